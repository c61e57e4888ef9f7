"""`sed-uda classify` and `sed_uda.load_model`: audio files give exactly the cache's evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import sed_uda
from sed_uda.cli import main
from sed_uda.corpus.layout import EMOTIONS
from sed_uda.data.crops import EvalBatches
from sed_uda.errors import BadArgument
from sed_uda.inference.checkpoint import DATA_STATE, read_checkpoint
from sed_uda.inference.classify import classify_recordings
from tests.conftest import REPO


def cache_probabilities(cli, model: torch.nn.Module, rows: np.ndarray) -> np.ndarray:
    """Class probabilities of cache rows, computed as evaluation does (whole utterances, batched)."""
    data = cli.datamodule
    batches = EvalBatches(
        data.frames, data.offsets, torch.from_numpy(rows), data.max_eval_frames, 32, with_rows=True
    )
    out = np.empty((len(rows), len(EMOTIONS)), dtype=np.float32)
    position = {int(row): k for k, row in enumerate(rows)}
    with torch.inference_mode():
        for batch in (batches[i] for i in range(len(batches))):
            probs = model(batch["x"], batch["lengths"]).softmax(-1).numpy()
            out[[position[int(r)] for r in batch["row"]]] = probs
    return out


def held_out_rows(cli) -> np.ndarray:
    return np.concatenate([cli.datamodule.rows(language, "test") for language in ("en", "zh")])


def assert_same_predictions(frame: pd.DataFrame, files: list[Path], expected: np.ndarray) -> None:
    got = frame.set_index("file").loc[[str(f) for f in files]]
    columns = [c for c in frame.columns if c.startswith("p_")]
    np.testing.assert_allclose(got[columns].to_numpy(), expected, atol=1e-5)
    assert (got[columns].to_numpy().argmax(1) == expected.argmax(1)).all()


def test_checkpoint_is_self_contained(global_run) -> None:
    _, ckpt = global_run
    state = read_checkpoint(ckpt)[DATA_STATE]
    assert state["features"] == ["zcr", "mfcc", "mel", "contrast"] and state["normalization"] == "global"
    assert state["normalization_stats"]["mean"].shape == (176,)
    assert state["class_names"] == ["neutral", "happy", "angry", "sad", "surprise"]
    assert (
        state["direction"] == "en2zh"
        and state["front_end_versions"]["librosa"]
        and state["front_end"]["class_path"].endswith("LibrosaFrames")
        and state["front_end"]["init_args"]["n_mels"] == 128
    )


def test_classify_from_wav_equals_evaluation_from_cache(global_run, tiny_corpus: Path) -> None:
    cli, ckpt = global_run
    rows = held_out_rows(cli)
    files = [tiny_corpus / path for path in cli.datamodule.manifest["path"].iloc[rows]]
    frame = classify_recordings(ckpt, files)
    model = sed_uda.load_model(ckpt)
    assert_same_predictions(frame, files, cache_probabilities(cli, model.model, rows))
    one = model.predict(files[0])
    assert one.emotion == frame.loc[0, "emotion"] and one.confidence == pytest.approx(
        frame.loc[0, "confidence"]
    )
    samples, rate = sf.read(files[0], dtype="float32")
    assert model.predict(samples, sample_rate=rate) == one


def test_bad_files_are_reported_and_skipped_and_others_classified(
    global_run, tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = global_run
    good = sorted(tiny_corpus.rglob("*.wav"))[:2]
    samples, rate = sf.read(good[0], dtype="float32")
    stereo = tmp_path / "clips" / "stereo_44k.flac"
    stereo.parent.mkdir()
    resampled = np.interp(np.arange(0, len(samples), rate / 44_100), np.arange(len(samples)), samples)
    sf.write(stereo, np.stack([resampled, resampled], axis=1), 44_100)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "predictions.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--ckpt", str(ckpt), *map(str, good), str(tmp_path / "clips"), "--out", str(out)])
    assert exit_info.value.code == 1  # the status the README gives
    assert "then exits with status 1" in " ".join((REPO / "README.md").read_text().split())
    captured = capsys.readouterr()
    assert "broken.wav: unreadable header" in captured.out
    assert "resampled 44100 Hz -> 16000 Hz (1 file)" in captured.out
    assert "down-mixed 2 channels to mono (1 file)" in captured.out
    assert "1 of 4 files could not be classified" in captured.err
    assert "Traceback" not in captured.err
    records = json.loads(out.read_text())
    assert [r["file"] for r in records] == [*map(str, good), str(stereo)]
    assert list(records[0]) == ["file", "emotion", "confidence", *(f"p_{e}" for e in EMOTIONS)]


def test_speaker_option_is_refused_for_a_globally_normalised_model(global_run, tiny_corpus: Path) -> None:
    _, ckpt = global_run
    with pytest.raises(BadArgument, match="per-speaker normalisation"):
        classify_recordings(ckpt, [tiny_corpus], speaker_from="parent-folder")

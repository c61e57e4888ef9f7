"""What users hand to `classify` and `predict`: devices, batch sizes, audio layouts, lists, folders of
mixed formats, near-silent files, and options with wrong values (one line, exit 2 for arguments)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import sed_uda
from sed_uda.cli import main


def failure(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """(exit status, the one error line) of a refused `sed-uda` command."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "Traceback" not in "\n".join(err)
    return exit_info.value.code, err[0]


def clip(corpus: Path) -> Path:
    return sorted(corpus.rglob("*.wav"))[0]


def test_a_gpu_device_without_a_gpu_is_one_line(
    global_run, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = global_run
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status, line = failure(capsys, "classify", "--ckpt", str(ckpt), "--device", "gpu", str(clip(tiny_corpus)))
    assert status == 1 and "no CUDA GPU is available" in line and "--device cpu" in line
    status, line = failure(capsys, "classify", "--ckpt", str(ckpt), "--device", "tpu", str(clip(tiny_corpus)))
    assert status == 2 and "use cpu, cuda (or gpu) or cuda:N" in line


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--batch-size", "0", "--batch-size 0: give a positive number"),
        (
            "--speaker-from",
            "folder",
            "--speaker-from folder: use parent-folder (one folder per speaker) or a .csv",
        ),
    ],
)
def test_wrong_option_values_are_argument_errors(
    global_run, tiny_corpus: Path, option: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = global_run
    status, line = failure(capsys, "classify", "--ckpt", str(ckpt), option, value, str(clip(tiny_corpus)))
    assert status == 2 and expected in line


def test_a_missing_checkpoint_option_is_an_argument_error(
    tiny_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, line = failure(capsys, "classify", str(clip(tiny_corpus)))
    assert status == 2 and "--ckpt is required" in line


def test_channels_first_samples_and_lists_of_files_are_accepted(global_run, tiny_corpus: Path) -> None:
    _, ckpt = global_run
    model = sed_uda.load_model(ckpt)
    first, second = sorted(tiny_corpus.rglob("*.wav"))[:2]
    samples, rate = sf.read(first, dtype="float32")
    stereo = np.stack([samples, samples], axis=1)  # (samples, channels)
    expected = model.predict(first)
    for layout in (stereo, stereo.T, torch.from_numpy(stereo.T.copy())):  # .T: as torchaudio returns it
        got = model.predict(layout, sample_rate=rate)
        assert got.emotion == expected.emotion and got.confidence == pytest.approx(
            expected.confidence, abs=1e-4
        )
    both = model.predict([first, str(second)])
    for got, alone in zip(both, [expected, model.predict(second)], strict=True):
        assert got.emotion == alone.emotion and got.confidence == pytest.approx(alone.confidence, abs=1e-4)


def test_every_audio_format_in_a_folder_is_classified_and_other_files_counted(
    global_run, tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = global_run
    samples, rate = sf.read(clip(tiny_corpus), dtype="float32")
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "a.ogg", samples, rate, format="OGG", subtype="VORBIS")
    sf.write(clips / "b.mp3", samples, rate, format="MP3", subtype="MPEG_LAYER_III")
    sf.write(clips / "c.wav", samples, rate)
    (clips / "notes.txt").write_text("not audio")
    main(["classify", "--ckpt", str(ckpt), str(clips), "--out", str(tmp_path / "out.csv")])
    assert "left out 1 files that are not audio (.txt: 1)" in capsys.readouterr().out
    classified = pd.read_csv(tmp_path / "out.csv")["file"].map(lambda f: Path(f).name)
    assert classified.tolist() == ["a.ogg", "b.mp3", "c.wav"]


def test_near_silent_files_are_reported_like_silent_ones(
    global_run, tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 s of digital silence with +-1 LSB dither: -90 dBFS, no speech."""
    _, ckpt = global_run
    dither = np.random.default_rng(0).integers(-1, 2, size=32_000).astype(np.int16)
    sf.write(tmp_path / "dither.wav", dither, 16_000, subtype="PCM_16")
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--ckpt", str(ckpt), str(tmp_path / "dither.wav"), str(clip(tiny_corpus))])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "dither.wav: near-silent: RMS level -9" in out and "dBFS < -60 dBFS" in out


def test_help_texts_cite_only_files_that_exist_or_that_a_default_fit_writes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re

    import yaml

    from sed_uda.cli import TOOL_COMMANDS
    from tests.conftest import REPO

    rule = yaml.safe_load((REPO / "configs" / "experiment" / "en2zh.yaml").read_text())["selection"]["rule"]
    written = {"last.ckpt", f"best-{rule}.ckpt"}
    for command in TOOL_COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        for path in re.findall(r"[\w.<>-]+/[\w./<>-]+\.(?:yaml|ckpt|py)\b", text):
            if path.endswith(".ckpt"):
                assert Path(path).name in written, f"`{command} --help` cites {path}, which fit never writes"
            elif "<" not in path and not re.fullmatch(r"[A-Z]", Path(path).stem):  # <name>, X: placeholders
                assert (REPO / path).exists(), f"`{command} --help` cites {path}, which does not exist"

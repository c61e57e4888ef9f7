"""Prediction reproduces training's normalisation in every mode, or refuses: never a constant answer.

In each setting the probabilities from wav files equal those `sed-uda test` computes from the cache
(hence the same accuracy): utterance (each clip alone), speaker with the statistics stored in the
checkpoint (a CSV names the speakers), speaker enrolled from the same train+val recordings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sed_uda
from sed_uda.cli import main
from sed_uda.inference.classify import classify_recordings
from sed_uda.inference.model import NeedsSpeaker
from sed_uda.inference.speakers import SpeakerUnknown
from tests.conftest import REPO
from tests.inference.conftest import fit_tiny
from tests.inference.test_classify import assert_same_predictions, cache_probabilities, held_out_rows


def held_out_files(cli, corpus: Path) -> list[Path]:
    return [corpus / path for path in cli.datamodule.manifest["path"].iloc[held_out_rows(cli)]]


def accuracy(probabilities: np.ndarray, cli, rows: np.ndarray) -> float:
    return float((probabilities.argmax(1) == cli.datamodule.labels(rows).numpy()).mean())


def test_a_speaker_model_without_speakers_is_refused_with_the_fix(
    stats_speaker_run, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = stats_speaker_run
    clip = sorted(tiny_corpus.rglob("*.wav"))[0]
    with pytest.raises(NeedsSpeaker, match="enroll"):
        sed_uda.load_model(ckpt).predict(clip)
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--ckpt", str(ckpt), str(tiny_corpus)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "--speaker-from parent-folder" in err[0]
        and "--data.normalization utterance" in err[0]
    )


def test_stored_speaker_statistics_give_the_cache_evaluation(
    stats_speaker_run, tiny_corpus: Path, tiny_cache: Path
) -> None:
    cli, ckpt = stats_speaker_run
    rows, files = held_out_rows(cli), held_out_files(cli, tiny_corpus)
    frame = classify_recordings(ckpt, files, speaker_from=str(tiny_cache / "manifest.csv"))
    expected = cache_probabilities(cli, sed_uda.load_model(ckpt).model, rows)
    assert_same_predictions(frame, files, expected)
    columns = [c for c in frame.columns if c.startswith("p_")]
    assert len(np.unique(frame[columns].round(4).to_numpy(), axis=0)) > len(files) // 2  # not one answer
    assert frame["emotion"].nunique() > 1


def test_an_enrolled_speaker_equals_their_stored_statistics(stats_speaker_run, tiny_corpus: Path) -> None:
    """Enrolled from the same train+val recordings the data module pooled: the same inputs."""
    cli, ckpt = stats_speaker_run
    manifest = cli.datamodule.manifest
    model = sed_uda.load_model(ckpt)
    speaker = manifest["speaker"].iloc[0]
    mine = manifest["speaker"] == speaker
    enrolment = manifest[mine & manifest["split"].isin(["train", "val"])]["path"]
    model.enroll("new speaker", [tiny_corpus / p for p in enrolment])
    rows = np.flatnonzero(mine & (manifest["split"] == "test"))
    predictions = model.predict([tiny_corpus / p for p in manifest["path"].iloc[rows]], speaker="new speaker")
    got = np.array([[p.probabilities[name] for name in model.class_names] for p in predictions])
    np.testing.assert_allclose(got, cache_probabilities(cli, model.model, rows), atol=1e-5)
    assert model.speakers[-1] == "new speaker" and speaker in model.speakers


def test_speaker_folders_are_enrolled_and_answers_vary(
    stats_speaker_run, tiny_corpus: Path, tmp_path: Path, capsys
) -> None:
    cli, ckpt = stats_speaker_run
    for path in held_out_files(cli, tiny_corpus):
        link = tmp_path / path.name.split("_")[0] / path.name
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(path)
    frame = classify_recordings(ckpt, [tmp_path], speaker_from="parent-folder")
    assert "4 enrolled from the recordings classified here" in capsys.readouterr().out
    assert frame["emotion"].nunique() > 1 and frame["confidence"].nunique() == len(frame)


def test_an_utterance_model_classifies_one_clip_alone_as_the_cache_does(
    utterance_run, tiny_corpus: Path
) -> None:
    cli, ckpt = utterance_run
    rows, files = held_out_rows(cli), held_out_files(cli, tiny_corpus)
    frame = classify_recordings(ckpt, files)
    model = sed_uda.load_model(ckpt)
    expected = cache_probabilities(cli, model.model, rows)
    assert_same_predictions(frame, files, expected)
    assert accuracy(frame.filter(like="p_").to_numpy(), cli, rows) == accuracy(expected, cli, rows)
    one = model.predict(files[3])
    assert one.probabilities == pytest.approx(
        frame.filter(like="p_").iloc[3].set_axis(model.class_names).to_dict(), abs=1e-5
    )
    assert model.normalization == "utterance" and frame["confidence"].nunique() == len(frame)


def test_speaker_statistics_in_the_checkpoint_leave_out_test_audio(stats_speaker_run) -> None:
    cli, ckpt = stats_speaker_run
    from sed_uda.inference.checkpoint import DATA_STATE, read_checkpoint

    stored = read_checkpoint(ckpt)[DATA_STATE]["normalization_stats"]
    manifest = pd.read_csv(Path(cli.datamodule.cache_dir) / "manifest.csv", dtype=str)
    assert sorted(stored["speakers"]) == sorted(manifest["speaker"].unique())
    assert stored["mean"].shape == (len(stored["speakers"]), cli.datamodule.num_channels)


def test_enrolment_needs_several_recordings_and_a_csv_must_name_every_file(
    stats_speaker_run, tiny_corpus: Path, tmp_path: Path
) -> None:
    """One clip's own statistics would give the same answer for every clip: refused, like unnamed files."""
    _, ckpt = stats_speaker_run
    clips = sorted(tiny_corpus.rglob("*.wav"))[:2]
    with pytest.raises(NeedsSpeaker, match="1 recording\\(s\\) to enrol from; give at least 5"):
        sed_uda.load_model(ckpt).enroll("me", clips[:1])
    (tmp_path / "speakers.csv").write_text(f"file,speaker\n{clips[0]},me\n")
    with pytest.raises(SpeakerUnknown, match="1 of 2 recordings are not listed"):
        classify_recordings(ckpt, clips, speaker_from=str(tmp_path / "speakers.csv"))


def test_a_speaker_adversarial_model_needs_no_speaker_to_classify_one_clip(
    tiny_cache: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    """Speakers are known in training only: the checkpoint (speaker classifier included) classifies
    a clip alone, as `sed-uda test` scores the cache."""
    adversary = f"--config={REPO / 'configs' / 'adaptation' / 'mcc_speaker_adv.yaml'}"
    cli = fit_tiny(tiny_cache, tmp_path, adversary, "--data.normalization=global")
    ckpt = Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    assert [type(a).__name__ for a in cli.model.adaptations] == ["MCC", "SpeakerAdversarial"]
    rows, files = held_out_rows(cli), held_out_files(cli, tiny_corpus)
    frame = classify_recordings(ckpt, files)
    assert_same_predictions(frame, files, cache_probabilities(cli, sed_uda.load_model(ckpt).model, rows))

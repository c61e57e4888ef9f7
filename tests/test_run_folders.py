"""Runs never mix: every training command writes into a folder of its own, a checkpoint alone is enough
to evaluate it, and using a finished run (test, predict, resume) never changes another run's files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FAST
from tests.test_cli import DANN, one_line, sed_uda

TINY_FIT = ["--trainer.max_epochs=1", "--data.steps_per_epoch=2"]


def _fit(cache: Path, *extra: str) -> list[str]:
    return ["fit", *DANN, f"--data.cache_dir={cache}", *FAST, *TINY_FIT, *extra]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (W&B's offline folders aside: W&B owns them)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "wandb" not in path.parts
    }


@pytest.fixture(scope="module")
def finished_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch DANN run made by `sed-uda fit` into its own folder."""
    run = tmp_path_factory.mktemp("fitted") / "run"
    from sed_uda.cli import main

    try:
        main(_fit(tiny_cache, f"--trainer.default_root_dir={run}"))
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    assert (run / "checkpoints" / "best-target_im.ckpt").is_file()
    return run


def test_a_fit_writes_only_its_own_checkpoints(finished_run: Path) -> None:
    checkpoints = sorted(str(path.relative_to(finished_run)) for path in finished_run.rglob("*.ckpt"))
    assert checkpoints == ["checkpoints/best-target_im.ckpt", "checkpoints/last.ckpt"]


def test_test_and_predict_work_from_the_checkpoint_alone(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    checkpoint = str(finished_run / "checkpoints" / "best-target_im.ckpt")
    status, out, err = sed_uda(["test", "--ckpt_path", checkpoint, *FAST], capsys)
    assert status == 0, err
    assert out.count("en2zh/test/target_acc ") == 1 and "DataLoader 1" not in out  # every metric once
    status, out, err = sed_uda(["predict", "--ckpt_path", checkpoint, *FAST], capsys)
    assert status == 0, err
    predictions = pd.read_csv(tmp_path / "runs" / "predict" / "dann_cnn1d_en2zh" / "predictions.csv")
    assert len(predictions) > 0 and "predicted" in predictions


def test_evaluating_a_run_with_its_own_config_leaves_the_run_unchanged(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _files(finished_run)
    argv = ["test", "--config", str(finished_run / "config.yaml"), "--ckpt_path", "last"]
    for _ in range(2):
        status, out, err = sed_uda(argv, capsys)
        assert status == 0, err
    assert _files(finished_run) == before
    evaluations = sorted(p.name for p in (tmp_path / "runs" / "test").iterdir())
    assert evaluations == ["dann_cnn1d_en2zh", "dann_cnn1d_en2zh-2"]
    assert "writing to runs/test/dann_cnn1d_en2zh-2" in out


def test_fit_into_a_folder_holding_a_run_is_refused_and_changes_nothing(
    finished_run: Path, tiny_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(finished_run)
    status, _, err = sed_uda(_fit(tiny_cache, f"--trainer.default_root_dir={finished_run}"), capsys)
    line = one_line(err, "fit")
    assert status == 1 and f"{finished_run}: already holds a run" in line
    assert "--ckpt_path last" in line and f"--trainer.default_root_dir {finished_run}-2" in line
    assert _files(finished_run) == before


def test_default_run_folders_are_new_for_every_fit_and_last_resumes_the_newest(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        status, _, err = sed_uda(_fit(tiny_cache), capsys)
        assert status == 0, err
    runs = tmp_path / "runs" / "fit"
    assert sorted(p.name for p in runs.iterdir()) == ["dann_cnn1d_en2zh", "dann_cnn1d_en2zh-2"]
    first = _files(runs / "dann_cnn1d_en2zh")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resume = [*_fit(tiny_cache), "--trainer.max_epochs=2", "--ckpt_path", "last"]
        status, out, err = sed_uda(resume, capsys)
    assert status == 0, err
    assert "writing to runs/fit/dann_cnn1d_en2zh-2" in out
    assert not [w for w in caught if "Previous log files" in str(w.message)]  # they are kept, not deleted
    assert _files(runs / "dann_cnn1d_en2zh") == first
    metrics = pd.read_csv(runs / "dann_cnn1d_en2zh-2" / "csv" / "version_0" / "metrics.csv")
    assert sorted(metrics["epoch"].dropna().unique()) == [0, 1]
    fewer = [*_fit(tiny_cache), "--trainer.max_epochs=0", "--ckpt_path", "last"]  # than the run has done
    status, _, err = sed_uda(fewer, capsys)
    line = err.strip().splitlines()[-1]  # after Lightning's warnings where pytest does not capture them
    assert status == 1 and "dann_cnn1d_en2zh-2/checkpoints/last.ckpt: invalid configuration" in line
    assert "max_epochs=0" in line


def test_ckpt_path_last_without_a_checkpoint_is_refused(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = sed_uda(
        [*_fit(tiny_cache, f"--trainer.default_root_dir={tmp_path / 'new'}"), "--ckpt_path", "last"], capsys
    )
    line = one_line(err, "fit")
    assert status == 2 and f"{tmp_path / 'new' / 'checkpoints' / 'last.ckpt'} does not exist" in line
    assert not (tmp_path / "new").exists()

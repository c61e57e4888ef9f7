"""Checkpoints from the CLI: last.ckpt is the last epoch, predict writes a CSV, refusals are one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from sed_uda.cli import main
from sed_uda.corpus.layout import EMOTIONS
from tests.conftest import FAST, REPO
from tests.inference.conftest import DANN


def run_cli(*args: str) -> None:
    main([*args, *FAST])


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one-line error of a refused command (and that it was refused without a traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*args)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "CheckpointMismatch" not in err  # a traceback would name the exception
    return next(line for line in err.splitlines() if line.startswith(f"sed-uda {args[0]}: error:"))


def test_last_checkpoint_is_the_last_epoch(global_run) -> None:
    cli, last = global_run
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["global_step"] == cli.trainer.global_step
    assert checkpoint["epoch"] == cli.trainer.max_epochs - 1  # the index of the epoch it ends


def test_predict_writes_one_row_per_utterance(global_run, tiny_cache: Path, tmp_path: Path) -> None:
    _, ckpt = global_run
    root = tmp_path / "predict"
    run_cli(
        "predict",
        *DANN,
        "--data.normalization=global",
        f"--data.cache_dir={tiny_cache}",
        f"--ckpt_path={ckpt}",
        f"--trainer.default_root_dir={root}",
    )
    frame = pd.read_csv(root / "predictions.csv", dtype={"speaker": str})
    probabilities = [f"p_{name}" for name in EMOTIONS]
    assert list(frame.columns) == [
        "utterance_id",
        "speaker",
        "language",
        "split",
        "emotion",
        "predicted",
        "confidence",
        *probabilities,
    ]
    manifest = pd.read_csv(tiny_cache / "manifest.csv", dtype=str)
    assert frame["utterance_id"].tolist() == manifest["utterance_id"].tolist()
    assert (frame[probabilities].sum(axis=1) - 1).abs().max() < 1e-5
    assert (frame["predicted"] == frame[probabilities].idxmax(axis=1).str[2:]).all()


def test_test_without_checkpoint_is_refused(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refusal(
        capsys,
        "test",
        *DANN,
        f"--data.cache_dir={tiny_cache}",
        f"--trainer.default_root_dir={tmp_path}",
    )
    assert "needs --ckpt_path" in line and "--untrained=true" in line


def test_checkpoint_of_another_model_or_input_is_refused(
    global_run, tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = global_run
    common = [
        f"--data.cache_dir={tiny_cache}",
        f"--ckpt_path={ckpt}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    source_only = REPO / "configs" / "experiment" / "en2zh.yaml"
    line = refusal(capsys, "test", f"--config={source_only}", *common)
    assert "model.adaptations: checkpoint [{'class_path': 'sed_uda.adaptation.dann.DANN'" in line
    assert "config []" in line
    line = refusal(capsys, "test", *DANN, "--data.features=[mfcc, mel]", *common)
    assert "model.encoder.init_args.in_channels: checkpoint 176, config 168" in line
    assert "data.features: checkpoint ['zcr', 'mfcc', 'mel', 'contrast'], config ['mfcc', 'mel']" in line

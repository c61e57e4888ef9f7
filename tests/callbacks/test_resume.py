"""Exact resume: a run killed mid-epoch and resumed with `--ckpt_path last` ends bit-identical (CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from sed_uda.experiments.figures import read_metrics
from sed_uda.models.selection.rules import DEFAULT_RULE
from tests.conftest import FAST, REPO
from tests.inference.conftest import DANN

STEPS_PER_EPOCH = 4
EPOCHS = 3


def _fit(cache: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        "fit",
        *DANN,
        f"--data.cache_dir={cache}",
        f"--trainer.default_root_dir={root}",
        f"--data.steps_per_epoch={STEPS_PER_EPOCH}",
        f"--trainer.max_epochs={EPOCHS}",
        "--trainer.log_every_n_steps=1",
        *FAST,
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "sed_uda.cli", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def _weights(root: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(root / "checkpoints" / name, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    assert _fit(tiny_cache, root).returncode == 0
    return root


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_killed_and_resumed_run_is_bit_identical(
    signal_name: str, uninterrupted: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    kill = {
        "class_path": "tests.callbacks.interrupt.InterruptAt",
        "init_args": {"step": 6, "signal_name": signal_name},
    }
    killed = _fit(tiny_cache, tmp_path, f"--trainer.callbacks+={json.dumps(kill)}")
    assert killed.returncode != 0, "the run should have been interrupted at step 6 (epoch 2 of 3)"
    interrupted = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert interrupted["global_step"] == STEPS_PER_EPOCH

    resumed = _fit(tiny_cache, tmp_path, "--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    for name in ("last.ckpt", f"best-{DEFAULT_RULE}.ckpt"):
        reference, weights = _weights(uninterrupted, name), _weights(tmp_path, name)
        assert all(torch.equal(reference[k], weights[k]) for k in reference), name
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    identity = final["callbacks"]["ResumeState"]["loggers"]
    assert identity["wandb_id"] and identity == interrupted["callbacks"]["ResumeState"]["loggers"]
    assert list((tmp_path / "csv").iterdir()) == [tmp_path / "csv" / "version_0"]  # the same CSV log
    expected, history = read_metrics(uninterrupted), read_metrics(tmp_path)
    pd.testing.assert_frame_equal(history, expected, check_exact=True)
    assert history["epoch"].max() == EPOCHS - 1

"""Exact resume: a run killed mid-epoch and resumed with `--ckpt_path last` ends bit-identical (CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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
    """`sed-uda fit` in its own process, one torch thread (the same for every run compared here)."""
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
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sed_uda.cli", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def _weights(root: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(root / "checkpoints" / name, weights_only=True)["state_dict"]


def _interrupt_then_resume(cache: Path, root: Path, signal_name: str) -> dict:
    """Fit until `signal_name` arrives at step 6 (epoch 2 of 3), keep what the interrupted run left,
    then resume it with `--ckpt_path last`."""
    kill = {
        "class_path": "tests.callbacks.interrupt.InterruptAt",
        "init_args": {"step": 6, "signal_name": signal_name},
    }
    killed = _fit(cache, root, f"--trainer.callbacks+={json.dumps(kill)}")
    interrupted = (
        torch.load(root / "checkpoints" / "last.ckpt", weights_only=True) if killed.returncode else None
    )
    return {"interrupted": interrupted, "resumed": _fit(cache, root, "--ckpt_path=last")}


SIGNALS = ("SIGKILL", "SIGINT")


@pytest.fixture(scope="module")
def runs(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The uninterrupted run and each signal's interrupted-then-resumed run, two processes at a time."""
    roots = {name: tmp_path_factory.mktemp(name) for name in ("uninterrupted", *SIGNALS)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = pool.submit(_fit, tiny_cache, roots["uninterrupted"])
        pipelines = {
            name: pool.submit(_interrupt_then_resume, tiny_cache, roots[name], name) for name in SIGNALS
        }
        assert reference.result().returncode == 0, reference.result().stderr[-2000:]
        return {"roots": roots} | {name: future.result() for name, future in pipelines.items()}


@pytest.mark.parametrize("signal_name", SIGNALS)
def test_killed_and_resumed_run_is_bit_identical(signal_name: str, runs: dict) -> None:
    uninterrupted, root, run = runs["roots"]["uninterrupted"], runs["roots"][signal_name], runs[signal_name]
    assert run["interrupted"] is not None, "the run should have been interrupted at step 6 (epoch 2 of 3)"
    interrupted = run["interrupted"]
    assert interrupted["global_step"] == STEPS_PER_EPOCH
    assert run["resumed"].returncode == 0, run["resumed"].stderr[-2000:]

    for name in ("last.ckpt", f"best-{DEFAULT_RULE}.ckpt"):
        reference, weights = _weights(uninterrupted, name), _weights(root, name)
        assert all(torch.equal(reference[k], weights[k]) for k in reference), name
    final = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    identity = final["callbacks"]["ResumeState"]["loggers"]
    assert identity["wandb_id"] and identity == interrupted["callbacks"]["ResumeState"]["loggers"]
    assert list((root / "csv").iterdir()) == [root / "csv" / "version_0"]  # the same CSV log
    expected, history = read_metrics(uninterrupted), read_metrics(root)
    pd.testing.assert_frame_equal(history, expected, check_exact=True)
    assert history["epoch"].max() == EPOCHS - 1

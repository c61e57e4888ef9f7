"""Checkpoints trained on the tiny cache (every normalisation; 1D-CNN and stats encoder), one per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FAST, REPO

DANN = [
    f"--config={REPO / 'configs' / 'experiment' / 'en2zh.yaml'}",
    f"--config={REPO / 'configs' / 'adaptation' / 'dann.yaml'}",
]
"""The 1D-CNN trained with DANN, en -> zh."""


def fit_tiny(cache: Path, root: Path, *extra: str):
    from sed_uda.training_cli import training_cli

    args = [*DANN, f"--data.cache_dir={cache}", f"--trainer.default_root_dir={root}"]
    return training_cli(["fit", *args, *FAST, "--trainer.max_epochs=2", *extra])


@pytest.fixture(scope="session")
def global_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """(LightningCLI after fit, its last.ckpt) with global normalisation."""
    cli = fit_tiny(tiny_cache, tmp_path_factory.mktemp("global_run"), "--data.normalization=global")
    return cli, Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def utterance_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """(LightningCLI after fit, its last.ckpt) with per-utterance normalisation."""
    cli = fit_tiny(tiny_cache, tmp_path_factory.mktemp("utterance_run"), "--data.normalization=utterance")
    return cli, Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def stats_speaker_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """(LightningCLI after fit, its last.ckpt): the demo's model, stats encoder with per-speaker
    normalisation, whose pooled statistics are the same for every clip standardised by its own."""
    stats = f"--config={REPO / 'configs' / 'encoder' / 'stats.yaml'}"
    root = tmp_path_factory.mktemp("stats_speaker_run")
    cli = fit_tiny(tiny_cache, root, stats, "--data.normalization=speaker", "--data.crop_frames=512")
    return cli, Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt"

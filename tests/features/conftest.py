"""What the front-end tests share: one-epoch fits on a cache a test just built."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FAST, REPO


def fit_one_epoch(cache: str | Path, run: Path, configs: list[str], *extra: str) -> Path:
    """`sed-uda fit` (en->zh + `configs`, names under configs/) for one epoch on every block of `cache`,
    globally standardised so classify needs no speaker names; returns the run's last checkpoint."""
    from sed_uda.training_cli import training_cli

    training_cli(
        [
            "fit",
            f"--config={REPO / 'configs' / 'experiment' / 'en2zh.yaml'}",
            *(f"--config={REPO / 'configs' / name}" for name in configs),
            f"--data.cache_dir={cache}",
            "--data.features=null",
            f"--trainer.default_root_dir={run}",
            *FAST,
            "--trainer.max_epochs=1",
            "--data.normalization=global",
            *extra,
        ]
    )
    return run / "checkpoints" / "last.ckpt"

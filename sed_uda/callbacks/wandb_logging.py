"""Weights & Biases integration: offline by default, confusion matrices as W&B tables and CSV files."""

from __future__ import annotations

import netrc
import os
import shutil
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from sed_uda.corpus.layout import EMOTIONS


def drop_anonymous_setting(trainer: pl.Trainer) -> None:
    """Remove the `anonymous=None` Lightning's WandbLogger always hands to `wandb.init`.

    wandb 0.31 deprecated that setting and prints a warning for it on every run, even unset, which
    users would take for a problem with their run. Call it before the W&B run starts.
    """
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and logger._wandb_init.get("anonymous", False) is None:
            del logger._wandb_init["anonymous"]


def default_wandb_mode() -> str:
    """Set WANDB_MODE to `offline` unless the user chose a mode or configured an API key.

    W&B must never block a run or ask for an account; a user who logged in keeps online logging.
    """
    if "WANDB_MODE" not in os.environ and not _has_wandb_credentials():
        os.environ["WANDB_MODE"] = "offline"
    return os.environ.get("WANDB_MODE", "online")


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def finish_wandb_runs(trainer: pl.Trainer) -> None:
    """Close the trainer's W&B runs so their files are complete and the next run in this process is new."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


class DiscardEmptyWandbRuns(Callback):
    """A run that fails before its first training step logged nothing: remove its local W&B run folder.

    Lightning starts the W&B run before the data is set up, so a bad cache or split would otherwise
    leave an empty `wandb/offline-run-*` folder (or an empty online run, which is marked failed).
    """

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if trainer.global_step > 0:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                _discard_run(logger)


def _discard_run(logger: WandbLogger) -> None:
    import wandb

    run = logger.experiment
    if run.settings.mode == "disabled":
        return
    run_dir = Path(run.dir).parent  # <save_dir>/wandb/offline-run-<time>-<id>/files
    run.finish(exit_code=1)
    logger._experiment = None
    wandb.teardown()  # waits for W&B's service, so nothing writes into the folder once it is removed
    if run.settings.mode != "offline":
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    latest = run_dir.parent / "latest-run"
    if latest.is_symlink() and not latest.exists():
        latest.unlink()
    if run_dir.parent.is_dir() and not any(run_dir.parent.iterdir()):
        run_dir.parent.rmdir()


class ConfusionMatrixLogger(Callback):
    """After testing, send each domain's confusion matrix to W&B and write it as CSV beside the run."""

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        direction = pl_module.hparams.direction
        for key, matrix in getattr(pl_module, "confusion", {}).items():
            if not key.startswith("test/"):
                continue
            frame = pd.DataFrame(matrix.cpu().numpy(), index=list(EMOTIONS), columns=list(EMOTIONS))
            frame.index.name = "actual \\ predicted"
            name = f"{direction}/{key}_confusion"
            if trainer.log_dir is not None and trainer.is_global_zero:
                path = Path(trainer.log_dir) / f"{name.replace('/', '_')}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_csv(path)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    _log_wandb_confusion(logger, name, frame)


def _log_wandb_confusion(logger: WandbLogger, name: str, frame: pd.DataFrame) -> None:
    import wandb

    rows = [
        [actual, predicted, int(frame.loc[actual, predicted])]
        for actual in EMOTIONS
        for predicted in EMOTIONS
    ]
    table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=rows)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    plot = wandb.plot_table("wandb/confusion_matrix/v1", table, fields, {"title": name})
    logger.experiment.log({name: plot})

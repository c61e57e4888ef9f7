"""What an exactly resumed run needs beyond Lightning's checkpoint: random states, data streams, loggers.

`ResumeState` stores the global random states (dropout draws from torch's) and the identity of the
run's W&B run and CSV log version in every checkpoint, and restores states and data streams on resume.
Before a resumed `fit` starts, `continue_loggers` points the W&B logger at the same run
(`resume="allow"`) and the CSV logger at the same version, and `keep_csv_history` carries the rows
logged before the checkpoint into the continued metrics.csv (rows logged after it, by the interrupted
run, are dropped: the resumed run logs them again).
"""

from __future__ import annotations

import csv
import random
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, WandbLogger


class ResumeState(Callback):
    """Random states and logger identities in the checkpoint; on resume, random states and data streams
    restored just before the first training batch is fetched.

    Lightning restores stateful training loaders only if it sets the training data up after loading the
    checkpoint's loop state, but `UDAModule.configure_optimizers` reads `estimated_stepping_batches`,
    which sets the data up (and prefetches a batch) before that. So at `on_train_start` this callback
    restores the random states saved at the end of the last epoch, hands the loaders their saved stream
    states and restarts the prefetching iterator: the same order of events as at the start of an epoch
    of an uninterrupted run (iterators are created after the previous epoch's end, then batches drawn).
    """

    def __init__(self) -> None:
        self._trainer: pl.Trainer | None = None
        self._pending: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        _, keys, position, *_ = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position)},
            "python": random.getstate(),
            "loggers": logger_identities(self._trainer) if self._trainer is not None else {},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        keys = state["numpy"]["keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, state["numpy"]["position"], 0, 0.0))
        random.setstate(state["python"])
        fit_loop = trainer.fit_loop
        if fit_loop._combined_loader is not None and fit_loop._combined_loader_states_to_load:
            fit_loop._combined_loader._load_state_dicts(fit_loop._combined_loader_states_to_load)
            fit_loop._combined_loader_states_to_load = []
            iter(fit_loop._data_fetcher)  # drop the batch prefetched from the unrestored streams


def logger_identities(trainer: pl.Trainer) -> dict[str, Any]:
    """The W&B run id and the CSV log version of a trainer's loggers."""
    out: dict[str, Any] = {}
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            out["wandb_id"] = logger.version
        elif isinstance(logger, CSVLogger):
            out["csv_version"] = logger.version
    return out


def continue_loggers(trainer_config: Any, checkpoint: dict) -> None:
    """Point the configured W&B and CSV loggers (LightningCLI namespaces) at the checkpoint's runs."""
    identities = _identities(checkpoint)
    loggers = trainer_config.logger if isinstance(trainer_config.logger, list) else []
    for logger in loggers:
        class_path, init_args = logger.get("class_path", ""), logger.get("init_args")
        if init_args is None:
            continue
        if class_path.endswith("WandbLogger") and identities.get("wandb_id"):
            init_args.id = identities["wandb_id"]
            init_args.resume = "allow"
        elif class_path.endswith("CSVLogger") and identities.get("csv_version") is not None:
            init_args.version = identities["csv_version"]


def keep_csv_history(trainer: pl.Trainer, checkpoint: dict) -> None:
    """Keep the continued CSV log's rows from before the checkpoint (its global step).

    Lightning's CSV writer deletes an existing metrics.csv when it opens the folder, so the rows are
    read first and handed to the new writer, which writes them back before the resumed rows."""
    if not trainer.is_global_zero:  # only rank 0 writes the CSV log
        return
    step = int(checkpoint.get("global_step", 0))
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        rows = _rows_before(path, step) if path.is_file() else []
        with warnings.catch_warnings():  # "Previous log files ... will be deleted": they are kept, above
            warnings.filterwarnings("ignore", message=r".*Previous log files in this directory")
            writer = logger.experiment
        writer.metrics = rows + writer.metrics


def _rows_before(path: Path, step: int) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return [row for row in csv.DictReader(file) if row.get("step", "") != "" and int(row["step"]) < step]


def _identities(checkpoint: dict) -> dict[str, Any]:
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith(ResumeState.__qualname__):
            return state.get("loggers", {})
    return {}

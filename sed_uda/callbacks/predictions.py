"""`sed-uda predict` output: one CSV row per utterance with its class probabilities and predicted class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from sed_uda.corpus.layout import EMOTIONS

MANIFEST_COLUMNS: tuple[str, ...] = ("utterance_id", "speaker", "language", "split", "emotion")


class PredictionWriter(BasePredictionWriter):
    """Write `predictions.csv` (or `path`) in the run folder: the manifest columns of each utterance
    (its true emotion included), `predicted`, `confidence` and one `p_<class>` column per class.

    Prediction batches must carry "row" (the manifest row), as the data module's predict loader does.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.path = path
        self._rows: list[torch.Tensor] = []
        self._probs: list[torch.Tensor] = []

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows, self._probs = [], []

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if "row" not in batch:
            raise ValueError("prediction batches must carry 'row' (manifest rows) to be written as CSV")
        self._rows.append(batch["row"].cpu())
        self._probs.append(prediction["probs"].float().cpu())

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not self._rows:
            return
        manifest = trainer.datamodule.manifest
        rows, probs = torch.cat(self._rows).numpy(), torch.cat(self._probs).numpy()
        order = np.argsort(rows, kind="stable")
        columns = [c for c in MANIFEST_COLUMNS if c in manifest]
        frame = manifest.iloc[rows[order]][columns].reset_index(drop=True)
        probs = probs[order]
        frame["predicted"] = np.asarray(EMOTIONS)[probs.argmax(axis=1)]
        frame["confidence"] = probs.max(axis=1)
        for k, name in enumerate(EMOTIONS):
            frame[f"p_{name}"] = probs[:, k]
        path = Path(self.path or Path(trainer.default_root_dir) / "predictions.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        print(f"wrote {len(frame)} predictions to {path}")

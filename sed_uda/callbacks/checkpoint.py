"""Checkpointing by a model-selection rule, so `fit` keeps the model an honest protocol would pick."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from sed_uda.experiments.selection import DEFAULT_RULE, get_rule


class SelectionCheckpoint(ModelCheckpoint):
    """Keep `best-<rule>.ckpt` (and `last.ckpt`) under a selection rule from `sed_uda.experiments.selection`.

    The watched key carries the direction (`en2zh/val/source_acc`), which is only known once the
    model is attached, so it is filled in at setup.
    """

    def __init__(self, rule: str = DEFAULT_RULE, dirpath: str | None = None, save_last: bool = True) -> None:
        self.rule = get_rule(rule)
        super().__init__(
            dirpath=dirpath,
            filename=f"best-{self.rule.name}",
            monitor=self.rule.metric,
            mode=self.rule.mode,
            save_top_k=1,
            save_last=save_last,
            auto_insert_metric_name=False,
        )

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.monitor = self.rule.monitor(pl_module.hparams.direction)
        super().setup(trainer, pl_module, stage)

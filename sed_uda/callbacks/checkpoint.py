"""Checkpoints: the model a selection rule picks (`best-<rule>.ckpt`) and the latest epoch (`last.ckpt`).

They are separate callbacks so that `last.ckpt` is always the end of the last finished epoch, whatever
the selection metric did; `--ckpt_path last` therefore resumes where training stopped.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from sed_uda.models.selection.rules import DEFAULT_RULE, get_rule


class SelectionCheckpoint(ModelCheckpoint):
    """Keep `best-<rule>.ckpt` under a selection rule from `sed_uda.models.selection.rules`.

    The watched key carries the direction (`en2zh/val/source_acc`), which is only known once the
    model is attached, so it is filled in at setup. `last.ckpt` is `LastCheckpoint`'s job.
    """

    def __init__(self, rule: str = DEFAULT_RULE, dirpath: str | None = None, save_last: bool = False) -> None:
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


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt` at the end of every training epoch, nothing else.

    It saves in `on_train_epoch_end`, which runs after the epoch's validation, so the file also holds
    the state every selection checkpoint reached in that epoch (a resumed run keeps their bests).
    """

    def __init__(self, dirpath: str | None = None) -> None:
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, save_on_train_epoch_end=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # ModelCheckpoint only refreshes last.ckpt when it saved a top-k file in the same step.
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

"""Checkpoints: the epoch each selection rule picks (`best-<rule>.ckpt`) and the latest epoch (`last.ckpt`).

They are separate callbacks so that `last.ckpt` is always the end of the last finished epoch, whatever
the selection signals did; `--ckpt_path last` therefore resumes where training stopped. Selected
checkpoints hold weights only (plus hyperparameters and the data recipe, everything `test`, `classify`
and `load_model` read); the optimiser state lives in `last.ckpt` alone.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from sed_uda.models.selection.rules import DEFAULT_RULE, SelectionRule, get_rule


class SelectionCheckpoint(Callback):
    """`best-<rule>.ckpt` for a selection rule (`sed_uda.models.selection.rules`) and any rules added
    with `add_rules`, each the epoch whose validation signal was best so far.

    After each validation epoch every rule compares its signal (`<direction>/val/<metric>`) with its
    best; an epoch that improves some rules is saved once and each of those rules gets a hard link to
    that one file, so rules that agree share it. `picks` records each rule's epoch and score (kept in
    `last.ckpt`, so a resumed run keeps them). At setup the model is told which optional signals the
    rules read (`UDAModule.select_signals`), so nothing else is computed.
    """

    def __init__(self, rule: str = DEFAULT_RULE, dirpath: str | None = None) -> None:
        self.rule = get_rule(rule)
        self.rules: list[SelectionRule] = [self.rule]
        self.dirpath = dirpath
        self.picks: dict[str, dict[str, Any]] = {}
        """Rule name -> {"epoch", "score", "path"} of its pick so far."""

    def add_rules(self, names: Iterable[str]) -> None:
        """Also keep the picks of these rules (unknown names: ValueError listing the known ones)."""
        known = {rule.name for rule in self.rules}
        self.rules += [get_rule(name) for name in names if name not in known]

    @property
    def state_key(self) -> str:
        return self._generate_state_key(rule=self.rule.name)

    def path(self, rule: SelectionRule) -> Path:
        """Where the rule's pick is saved."""
        return Path(self.dirpath) / f"best-{rule.name}.ckpt"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        select = getattr(pl_module, "select_signals", None)
        if select is not None:
            select(rule.metric for rule in self.rules)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        improved = []
        for rule in self.rules:
            key = rule.monitor(pl_module.hparams.direction)
            if key not in trainer.callback_metrics:
                raise ValueError(
                    f"selection rule {rule.name!r} reads {key!r}, which validation did not log "
                    f"(it logged {', '.join(sorted(trainer.callback_metrics)) or 'nothing'})"
                )
            score = float(trainer.callback_metrics[key])
            if math.isfinite(score) and _better(rule, score, self.picks.get(rule.name)):
                improved.append((rule, score))
        if improved:
            self._save(trainer, improved)

    def _save(self, trainer: pl.Trainer, improved: list[tuple[SelectionRule, float]]) -> None:
        """One weights-only file for the epoch, linked under every rule that picked it."""
        directory = Path(self.dirpath)
        snapshot = directory / f".epoch{trainer.current_epoch}.ckpt.tmp"
        trainer.save_checkpoint(snapshot, weights_only=True)
        if trainer.is_global_zero:
            for rule, _ in improved:
                target = self.path(rule)
                staged = target.with_name(target.name + ".tmp")
                staged.unlink(missing_ok=True)
                try:
                    os.link(snapshot, staged)
                except OSError:  # a file system without hard links
                    shutil.copyfile(snapshot, staged)
                os.replace(staged, target)  # the rule's previous pick goes when no other rule shares it
            snapshot.unlink()
        trainer.strategy.barrier("selection_checkpoint")
        for rule, score in improved:
            self.picks[rule.name] = {
                "epoch": trainer.current_epoch,
                "score": score,
                "path": str(self.path(rule)),
            }

    def state_dict(self) -> dict[str, Any]:
        return {"picks": {name: dict(pick) for name, pick in self.picks.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.picks = {name: dict(pick) for name, pick in state_dict.get("picks", {}).items()}


def _better(rule: SelectionRule, score: float, pick: dict[str, Any] | None) -> bool:
    if pick is None:
        return True
    return score > pick["score"] if rule.mode == "max" else score < pick["score"]


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt` at the end of every training epoch, nothing else.

    It saves in `on_train_epoch_end`, which runs after the epoch's validation, so the file also holds
    the picks every selection rule made in that epoch (a resumed run keeps their bests).
    """

    def __init__(self, dirpath: str | None = None) -> None:
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, save_on_train_epoch_end=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # ModelCheckpoint only refreshes last.ckpt when it saved a top-k file in the same step.
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

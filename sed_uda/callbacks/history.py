"""Per-epoch validation scores of a run, kept for the record."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer


class ValidationHistory(Callback):
    """Every epoch's validation scores (all rules' signals and target test accuracy), so tables can
    measure how well each label-free rule ranks checkpoints."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prefix = f"{pl_module.hparams.direction}/val/"
        scores = {
            k.removeprefix(prefix): float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(prefix) and "_f1_" not in k
        }
        self.epochs.append({"epoch": trainer.current_epoch, **scores})

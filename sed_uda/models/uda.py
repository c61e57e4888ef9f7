"""The LightningModule: an injected encoder, an emotion classifier and injected adaptation losses.

It knows no method names. The training loss is `class loss + sum(weight_i * adaptation_i)` over the
adaptation losses given (none: source-only, or the target-supervised upper bound when the data module
labels the target side). Losses are computed in float32 (safe under "bf16-mixed") and metrics are
logged under `<direction>/<stage>/<domain>_<metric>` (e.g. `en2zh/val/target_uar`). The batch layout
is the contract in `sed_uda.data.keys`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import nn
from torchmetrics import MeanMetric

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss
from sed_uda.corpus.layout import EMOTIONS
from sed_uda.data.keys import LABELLED, TEST_LOADERS, UNLABELLED, VAL_LOADERS
from sed_uda.models.components.augment import FeatureAugment
from sed_uda.models.components.cnn1d import CNN1dEncoder
from sed_uda.models.components.heads import EmotionClassifier
from sed_uda.models.metrics import (
    CONFUSION,
    InformationMaximization,
    classification_metrics,
    flatten_classification,
)
from sed_uda.models.schedules import build_lr_scheduler
from sed_uda.models.selection.signals import DeepEmbeddedValidation, SoftNeighborhoodDensity

Batch = dict[str, torch.Tensor]
EVAL_LOADERS: dict[str, tuple[str, ...]] = {"val": VAL_LOADERS, "test": TEST_LOADERS}
"""Evaluation stage -> its dataloaders' domain names, in dataloader_idx order."""
OPTIONAL_SIGNALS: frozenset[str] = frozenset({"target_snd", "dev_risk", "target_test_acc"})
"""Validation signals only some selection rules read, each costly: SND builds a similarity matrix of up
to 4096^2, DEV fits a domain classifier, and target_test_acc (with the rest of the target test
metrics) scores the target test split. Computed only when asked (`UDAModule.select_signals`)."""


class UDAModule(LightningModule):
    """Speech emotion recognition across languages, adapted by the losses it is given.

    Args:
        encoder: utterance encoder, (batch, channels, frames) + lengths -> (batch, out_dim); it
            must expose `out_dim`. In configs: `class_path` + `init_args` (the CLI links its
            `in_channels` from the data module).
        adaptations: adaptation losses (`sed_uda.adaptation`), each with its trade-off `weight`;
            empty for source-only and target-supervised training. They need an unlabelled target
            batch in every training step.
        augment: feature-domain augmentation applied to every training batch (None: off).
        direction: adaptation direction such as "en2zh"; the first part of every log key.
        labelled_domain: the domain whose labels train the classifier ("target" only for the
            target-supervised upper bound); names the training accuracy it logs.
        classifier_hidden: hidden units of the emotion classifier (0 = linear).
        dropout: dropout of the classifier.
        optimizer: "adamw", "adam" or "sgd" (SGD uses `momentum`).
        lr: learning rate of the heads (and of the encoder, times `encoder_lr_scale`).
        weight_decay: weight decay of every parameter group.
        momentum: SGD momentum.
        scheduler: per-step learning-rate schedule: "ganin" (`1 / (1 + 10 p) ** 0.75`), "cosine" or "none".
        warmup_steps: linear warm-up steps before the cosine schedule (cosine only).
        encoder_lr_scale: learning-rate multiplier for the encoder (e.g. 0.1 with pretrained resnet weights).
        label_smoothing: label smoothing of the class loss.
    """

    def __init__(
        self,
        encoder: nn.Module | None = None,
        adaptations: Sequence[AdaptationLoss] = (),
        augment: FeatureAugment | None = None,
        direction: str = "en2zh",
        labelled_domain: Literal["source", "target"] = "source",
        classifier_hidden: int = 128,
        dropout: float = 0.3,
        optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        scheduler: Literal["none", "ganin", "cosine"] = "ganin",
        warmup_steps: int = 0,
        encoder_lr_scale: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if optimizer not in ("adamw", "adam", "sgd"):
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of adamw, adam, sgd")
        if labelled_domain not in ("source", "target"):
            raise ValueError(f"labelled_domain must be 'source' or 'target', got {labelled_domain!r}")
        # Through LightningCLI the hyperparameters are the config (class_path + init_args of every
        # component), so a checkpoint rebuilds its own model; built in Python, components are not
        # hyperparameters (their weights are in the state dict).
        by_config = _given_hyperparameters.get() is not None
        self.save_hyperparameters(ignore=[] if by_config else ["encoder", "adaptations", "augment"])
        self.encoder = encoder if encoder is not None else CNN1dEncoder(176)
        self.classifier = EmotionClassifier(self.encoder.out_dim, len(EMOTIONS), classifier_hidden, dropout)
        self.adaptations = nn.ModuleList(adaptations)
        for adaptation in self.adaptations:
            adaptation.bind(self.encoder.out_dim, len(EMOTIONS))
        self.augment = augment
        # One metric instance per stage and domain, so stages never mix and states follow the device.
        labelled = [
            f"{s}_{d}" for s, names in EVAL_LOADERS.items() for d in names if not d.endswith(UNLABELLED)
        ]
        unlabelled = [
            f"{s}_{d}" for s, names in EVAL_LOADERS.items() for d in names if d.endswith(UNLABELLED)
        ]
        self.eval_metrics = nn.ModuleDict({key: classification_metrics(len(EMOTIONS)) for key in labelled})
        self.eval_losses = nn.ModuleDict({key: MeanMetric() for key in labelled})
        self.selection_metrics = nn.ModuleDict(
            {key: InformationMaximization(len(EMOTIONS)) for key in unlabelled}
        )
        self.neighbourhood_density = nn.ModuleDict({key: SoftNeighborhoodDensity() for key in unlabelled})
        self.embedded_validation = DeepEmbeddedValidation()
        self._updated: set[str] = set()
        self.signals: set[str] | None = None
        """The optional validation signals computed (None: all of `OPTIONAL_SIGNALS`)."""
        self.confusion: dict[str, torch.Tensor] = {}
        """Confusion matrices of the last val/test epoch, keyed "<stage>/<domain>" (rows = true class)."""

    @property
    def needs_unlabelled(self) -> bool:
        """Whether training steps need an unlabelled target batch (any adaptation loss does)."""
        return len(self.adaptations) > 0

    def select_signals(self, metrics: Iterable[str]) -> None:
        """Compute, of `OPTIONAL_SIGNALS`, only those among `metrics` (plus any asked before): the
        selection rules' metrics, given by the selection checkpoints at setup."""
        self.signals = (self.signals or set()) | (OPTIONAL_SIGNALS & set(metrics))

    def _computes(self, signal: str) -> bool:
        return self.signals is None or signal in self.signals

    # ---- model -------------------------------------------------------------------------------------

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embeddings (batch, out_dim) of features x (batch, channels, frames) with valid `lengths`."""
        return self.encoder(x.float(), lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Emotion logits (batch, classes) in float32."""
        return self.classifier(self.embed(x, lengths)).float()

    def predict_step(
        self, batch: Batch, batch_idx: int = 0, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """Class probabilities and embeddings of an evaluation batch {"x", "lengths"} (e.g. for t-SNE)."""
        embedding = self.embed(batch["x"], batch["lengths"])
        probs = self.classifier(embedding).float().softmax(-1)
        return {"probs": probs, "embedding": embedding.float()}

    # ---- training ----------------------------------------------------------------------------------

    def training_progress(self) -> float:
        """p = global_step / total training steps in [0, 1]; restored with global_step on resume."""
        progress = self.global_step / self.trainer.estimated_stepping_batches
        return min(max(progress, 0.0), 1.0)

    def compute_losses(
        self, labelled: Batch, unlabelled: Batch | None = None, progress: float = 0.0
    ) -> dict[str, torch.Tensor | float]:
        """Float32 losses of one training batch at training `progress`.

        Returns class_loss, labelled_acc, loss = class_loss + sum(weight_i * adaptation_i), and every
        adaptation's logged values as `<name>_<value>`. Both domains pass the encoder together, so
        its batch statistics see both.
        """
        if self.needs_unlabelled and unlabelled is None:
            names = ", ".join(type(a).__name__ for a in self.adaptations)
            raise ValueError(
                f"adaptation losses ({names}) need an unlabelled target batch, but the training batch has "
                f"only {LABELLED!r}; the data module serves one when `unlabelled_target` is true"
            )
        if not self.needs_unlabelled:
            unlabelled = None  # never let target frames reach the encoder of a model that does not adapt
        n = labelled["x"].shape[0]
        parts = [labelled] if unlabelled is None else [labelled, unlabelled]
        frames = max(part["x"].shape[-1] for part in parts)
        x = torch.cat([_pad_frames(part["x"], frames) for part in parts])
        lengths = torch.cat([part["lengths"] for part in parts])
        embedding = self.embed(x, lengths).float()
        logits = self.classifier(embedding).float()
        y = labelled["y"]
        class_loss = F.cross_entropy(logits[:n], y, label_smoothing=self.hparams.label_smoothing)
        out: dict[str, torch.Tensor | float] = {
            "class_loss": class_loss,
            "labelled_acc": (logits[:n].argmax(-1) == y).float().mean(),
        }
        loss = class_loss
        if unlabelled is not None:
            inputs = AdaptationInputs(
                source_embedding=embedding[:n],
                target_embedding=embedding[n:],
                source_logits=logits[:n],
                target_logits=logits[n:],
                source_labels=y,
                target_x=x[n:],
                target_lengths=lengths[n:],
                progress=progress,
                classify=self,
                source_x=x[:n],
                source_lengths=lengths[:n],
                source_speakers=labelled.get("speaker"),
                target_speakers=unlabelled.get("speaker"),
            )
            for adaptation in self.adaptations:
                value, logged = adaptation(inputs)
                loss = loss + adaptation.weight * value.float()
                out.update({f"{adaptation.name}_{key}": v for key, v in logged.items()})
        out["loss"] = loss
        return out

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> torch.Tensor:
        labelled, unlabelled = batch[LABELLED], batch.get(UNLABELLED)
        if self.augment is not None:
            labelled = {**labelled, "x": self.augment(labelled["x"], labelled["lengths"])}
            if unlabelled is not None:
                unlabelled = {**unlabelled, "x": self.augment(unlabelled["x"], unlabelled["lengths"])}
        progress = self.training_progress() if self.needs_unlabelled else 0.0
        losses = self.compute_losses(labelled, unlabelled, progress)
        prefix = f"{self.hparams.direction}/train"
        size = labelled["x"].shape[0]
        self.log(f"{prefix}/loss", losses["loss"], batch_size=size, prog_bar=True)
        if self.logs_this_step():
            names = {"labelled_acc": f"{self.hparams.labelled_domain}_acc"}
            for key, value in losses.items():
                if key != "loss":
                    self.log(f"{prefix}/{names.get(key, key)}", value, batch_size=size)
            self.log(f"{prefix}/lr", self.trainer.optimizers[0].param_groups[-1]["lr"], batch_size=size)
        return losses["loss"]

    def logs_this_step(self) -> bool:
        """Whether the loggers write this training step (every `trainer.log_every_n_steps`).

        Only the loss, for the progress bar, is logged on the other steps: each `self.log` call has a
        fixed cost, and logging every loss part and the learning rate on every step slowed the stats
        encoder's steps to 0.72-0.82 of a plain PyTorch loop's rate (0.88-0.90 this way; see
        benchmarks/train_speed.py).
        """
        return (self.global_step + 1) % self.trainer.log_every_n_steps == 0

    def configure_optimizers(self) -> dict:
        """Encoder group at lr * encoder_lr_scale, heads at lr; the scheduler steps every optimiser step."""
        hp = self.hparams
        heads = [p for name, p in self.named_parameters() if not name.startswith("encoder.")]
        groups = [
            {"params": list(self.encoder.parameters()), "lr": hp.lr * hp.encoder_lr_scale},
            {"params": heads, "lr": hp.lr},
        ]
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        else:
            optimizer_class = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
            optimizer = optimizer_class(groups, lr=hp.lr, weight_decay=hp.weight_decay)
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total) and (hp.scheduler != "none" or self.needs_unlabelled):
            raise ValueError(
                f"scheduler {hp.scheduler!r} and adaptation schedules follow training progress, which "
                "needs a finite run: set trainer.max_steps or trainer.max_epochs"
            )
        scheduler = build_lr_scheduler(optimizer, hp.scheduler, int(total), hp.warmup_steps)
        if scheduler is None:
            return {"optimizer": optimizer}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---- evaluation --------------------------------------------------------------------------------

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluation_step("val", batch, dataloader_idx)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluation_step("test", batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_evaluation_epoch("test")

    def _evaluation_step(self, stage: str, batch: Batch, dataloader_idx: int) -> None:
        names = EVAL_LOADERS[stage]
        if dataloader_idx >= len(names):
            raise ValueError(
                f"{stage} dataloader {dataloader_idx} is unexpected: the data module must return the "
                f"{stage} loaders in the order {names}"
            )
        domain = names[dataloader_idx]
        key = f"{stage}_{domain}"
        if stage == "val" and domain == "target_test" and not self._computes("target_test_acc"):
            return
        embedding = self.embed(batch["x"], batch["lengths"]).float()
        logits = self.classifier(embedding).float()
        if key in self.eval_metrics:
            if "y" not in batch:
                raise ValueError(f"the {stage} {domain} loader must provide labels 'y'")
            losses = F.cross_entropy(logits, batch["y"], reduction="none")
            self.eval_metrics[key].update(logits.softmax(-1), batch["y"])
            self.eval_losses[key].update(losses.mean(), weight=len(logits))
            if stage == "val" and domain == "source" and self._computes("dev_risk"):
                self.embedded_validation.update(embedding, losses)
        else:
            probs = logits.softmax(-1)
            self.selection_metrics[key].update(probs)
            if self._computes("target_snd"):
                self.neighbourhood_density[key].update(probs)
            if self._computes("dev_risk"):
                self.embedded_validation.update(embedding)
        self._updated.add(key)

    def _log_evaluation_epoch(self, stage: str) -> None:
        """Compute, log and reset the metrics of every loader seen this epoch; keep confusion matrices."""
        seen = set(self._updated)
        for domain in EVAL_LOADERS[stage]:
            key = f"{stage}_{domain}"
            if key not in self._updated:
                continue
            if key in self.eval_metrics:
                results = self.eval_metrics[key].compute()
                self.confusion[f"{stage}/{domain}"] = results[CONFUSION].detach().cpu()
                values = flatten_classification(results, EMOTIONS)
                values["loss"] = self.eval_losses[key].compute()
                self.eval_metrics[key].reset()
                self.eval_losses[key].reset()
            else:
                values = self.selection_metrics[key].compute()
                if self._computes("target_snd"):
                    values["snd"] = self.neighbourhood_density[key].compute()
                self.selection_metrics[key].reset()
                self.neighbourhood_density[key].reset()
            # The unlabelled target loader reports as "target" (en2zh/val/target_im).
            prefix = f"{self.hparams.direction}/{stage}/{domain.removesuffix('_' + UNLABELLED)}"
            for name, value in values.items():
                # Values are already reduced over ranks (torchmetrics); sync_dist only keeps DDP quiet.
                self.log(f"{prefix}_{name}", value, add_dataloader_idx=False, sync_dist=True)
            self._updated.discard(key)
        if {f"{stage}_source", f"{stage}_target_{UNLABELLED}"} <= seen and self._computes("dev_risk"):
            self.log(
                f"{self.hparams.direction}/{stage}/dev_risk",
                self.embedded_validation.compute(),
                sync_dist=True,
            )
        self.embedded_validation.reset()


def _pad_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """x zero-padded on the time axis to `frames` (no copy when it already has them)."""
    return x if x.shape[-1] == frames else F.pad(x, (0, frames - x.shape[-1]))

"""The LightningModule: cross-lingual emotion recognition trained as DANN, source-only or target-supervised.

It wires an encoder, an emotion classifier and (for DANN) a gradient-reversal layer and domain
discriminator, computes the losses in float32 (safe under "bf16-mixed"), and logs metrics under
`<direction>/<stage>/<domain>_<metric>` (e.g. `en2zh/val/target_uar`).  The batch layout is the
contract in `sed_uda.data.keys`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics import MeanMetric

from sed_uda.corpus.layout import EMOTIONS
from sed_uda.data.keys import LABELLED, METHODS, TEST_LOADERS, UNLABELLED, VAL_LOADERS
from sed_uda.models.components.encoders import build_encoder
from sed_uda.models.components.grl import GradientReversalLayer
from sed_uda.models.components.heads import DomainDiscriminator, EmotionClassifier
from sed_uda.models.metrics import (
    CONFUSION,
    InformationMaximization,
    classification_metrics,
    flatten_classification,
)
from sed_uda.models.schedules import build_lr_scheduler, grl_lambda

Batch = dict[str, torch.Tensor]
EVAL_LOADERS: dict[str, tuple[str, ...]] = {"val": VAL_LOADERS, "test": TEST_LOADERS}
"""Evaluation stage -> its dataloaders' domain names, in dataloader_idx order."""


class UDAModule(LightningModule):
    """Speech emotion recognition across languages with optional domain-adversarial adaptation.

    Args:
        method: "dann" trains on labelled source + unlabelled target batches with a domain
            discriminator behind a gradient-reversal layer; "source_only" and "target_supervised"
            use the class loss only (the data module decides which domain is labelled).
        encoder: "cnn1d" (small temporal CNN) or "resnet50" (the feature map as an image).
        in_channels: feature channels of x (176 = zcr 1 + mfcc 40 + mel 128 + contrast 7); cnn1d only.
        direction: adaptation direction such as "en2zh"; the first part of every log key.
        width: cnn1d conv channels.
        depth: cnn1d conv blocks (each halves the time resolution).
        embedding_dim: cnn1d embedding size (resnet50 embeddings are 2048-d).
        dropout: dropout in the cnn1d encoder and both heads.
        resnet_weights: optional ResNet-50 state dict file (ImageNet or saved from this encoder).
        classifier_hidden: hidden units of the emotion classifier (0 = linear).
        discriminator_hidden: hidden units of the domain discriminator's two layers.
        lambda_max: final GRL coefficient of the schedule `lambda_max * (2 / (1 + exp(-gamma p)) - 1)`.
        gamma: steepness of that schedule; p = global_step / total training steps.
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
        method: Literal["dann", "source_only", "target_supervised"] = "dann",
        encoder: Literal["cnn1d", "resnet50"] = "cnn1d",
        in_channels: int = 176,
        direction: str = "en2zh",
        width: int = 64,
        depth: int = 4,
        embedding_dim: int = 128,
        dropout: float = 0.3,
        resnet_weights: str | None = None,
        classifier_hidden: int = 128,
        discriminator_hidden: int = 256,
        lambda_max: float = 1.0,
        gamma: float = 10.0,
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
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if optimizer not in ("adamw", "adam", "sgd"):
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of adamw, adam, sgd")
        self.save_hyperparameters()
        if encoder == "cnn1d":
            encoder_args = {
                "width": width,
                "depth": depth,
                "dropout": dropout,
                "embedding_dim": embedding_dim,
            }
        else:
            encoder_args = {"weights_path": resnet_weights}
        self.encoder = build_encoder(encoder, in_channels, **encoder_args)
        self.classifier = EmotionClassifier(self.encoder.out_dim, len(EMOTIONS), classifier_hidden, dropout)
        self.grl = GradientReversalLayer(0.0)
        self.discriminator = (
            DomainDiscriminator(self.encoder.out_dim, discriminator_hidden, dropout)
            if method == "dann"
            else None
        )
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
        self._updated: set[str] = set()
        self.confusion: dict[str, torch.Tensor] = {}
        """Confusion matrices of the last val/test epoch, keyed "<stage>/<domain>" (rows = true class)."""

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

    def compute_losses(self, labelled: Batch, unlabelled: Batch | None = None) -> dict[str, torch.Tensor]:
        """Float32 losses of one training batch with the current `self.grl.coeff`.

        Returns class_loss, labelled_acc and loss; with an unlabelled batch (DANN) also
        domain_loss (BCE of the discriminator, labelled = domain 0, unlabelled = domain 1, the two
        domains weighted equally) and domain_acc, and loss = class_loss + domain_loss.  Both domains
        pass the encoder together so its batch statistics see both.
        """
        if unlabelled is not None and self.discriminator is None:
            raise ValueError(
                f"unlabelled batches are only used by method 'dann', not {self.hparams.method!r}"
            )
        n = labelled["x"].shape[0]
        parts = [labelled] if unlabelled is None else [labelled, unlabelled]
        frames = max(part["x"].shape[-1] for part in parts)
        x = torch.cat([F.pad(part["x"], (0, frames - part["x"].shape[-1])) for part in parts])
        embedding = self.embed(x, torch.cat([part["lengths"] for part in parts]))
        logits = self.classifier(embedding[:n]).float()
        y = labelled["y"]
        class_loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        out = {
            "class_loss": class_loss,
            "labelled_acc": (logits.argmax(-1) == y).float().mean(),
            "loss": class_loss,
        }
        if unlabelled is not None:
            domain_logits = self.discriminator(self.grl(embedding)).float()
            domain = torch.cat([domain_logits.new_zeros(n), domain_logits.new_ones(len(domain_logits) - n)])
            per_row = F.binary_cross_entropy_with_logits(domain_logits, domain, reduction="none")
            out["domain_loss"] = 0.5 * (per_row[:n].mean() + per_row[n:].mean())
            out["domain_acc"] = ((domain_logits > 0).float() == domain).float().mean()
            out["loss"] = class_loss + out["domain_loss"]
        return out

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        unlabelled = None
        if hp.method == "dann":
            if UNLABELLED not in batch:
                raise ValueError(
                    f"method 'dann' needs unlabelled target data, but the training batch has only "
                    f"{sorted(batch)}; use a data module set up for method 'dann'"
                )
            unlabelled = batch[UNLABELLED]
            self.grl.coeff = grl_lambda(self.training_progress(), hp.lambda_max, hp.gamma)
        losses = self.compute_losses(batch[LABELLED], unlabelled)
        labelled_domain = "target" if hp.method == "target_supervised" else "source"
        prefix = f"{hp.direction}/train"
        size = batch[LABELLED]["x"].shape[0]
        self.log(f"{prefix}/loss", losses["loss"], batch_size=size, prog_bar=True)
        self.log(f"{prefix}/class_loss", losses["class_loss"], batch_size=size)
        self.log(f"{prefix}/{labelled_domain}_acc", losses["labelled_acc"], batch_size=size)
        if unlabelled is not None:
            self.log(f"{prefix}/domain_loss", losses["domain_loss"], batch_size=size)
            self.log(f"{prefix}/domain_acc", losses["domain_acc"], batch_size=size)
            self.log(f"{prefix}/grl_lambda", self.grl.coeff, batch_size=size)
        self.log(f"{prefix}/lr", self.trainer.optimizers[0].param_groups[-1]["lr"], batch_size=size)
        return losses["loss"]

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
        if not math.isfinite(total) and (hp.scheduler != "none" or hp.method == "dann"):
            raise ValueError(
                f"scheduler {hp.scheduler!r} and method {hp.method!r} follow training progress, which "
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
        key = f"{stage}_{names[dataloader_idx]}"
        logits = self(batch["x"], batch["lengths"])
        if key in self.eval_metrics:
            if "y" not in batch:
                raise ValueError(f"the {stage} {names[dataloader_idx]} loader must provide labels 'y'")
            self.eval_metrics[key].update(logits.softmax(-1), batch["y"])
            self.eval_losses[key].update(F.cross_entropy(logits, batch["y"]), weight=len(logits))
        else:
            self.selection_metrics[key].update(logits.softmax(-1))
        self._updated.add(key)

    def _log_evaluation_epoch(self, stage: str) -> None:
        """Compute, log and reset the metrics of every loader seen this epoch; keep confusion matrices."""
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
                self.selection_metrics[key].reset()
            # The unlabelled target loader reports as "target" (en2zh/val/target_im).
            prefix = f"{self.hparams.direction}/{stage}/{domain.removesuffix('_' + UNLABELLED)}"
            for name, value in values.items():
                self.log(f"{prefix}_{name}", value, add_dataloader_idx=False)
            self._updated.discard(key)

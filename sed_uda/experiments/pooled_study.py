"""Adaptation methods on pooled vectors in a plain PyTorch loop: many corpora, seeds and trade-offs in
minutes on a CPU, for deciding designs before spending grid time.

With whole utterances and no augmentation the stats encoder's pooled vector never changes during
training (mean and std over time of every standardised frame channel), so a run of the stats encoder
is, step for step, a run of its MLP on those vectors: this module trains exactly that network
(`StatsEncoder.net` + `EmotionClassifier`, AdamW, the Ganin learning-rate schedule, batches of 64
per side, 10 epochs) with the adaptation losses of a `configs/adaptation/*.yaml` file, as the toolkit
builds them. Mixup sees each vector as a one-frame input.

Selection never reads target labels: each run keeps the epoch with the highest information
maximisation on unlabelled target-train (the toolkit's default rule, `target_im`), and each method's
trade-off (a multiplier of its config's weights) and learning rate are chosen by the same score. The
oracle choice (target-test accuracy) is reported beside it and marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss
from sed_uda.corpus.layout import EMOTIONS
from sed_uda.models.components.heads import EmotionClassifier
from sed_uda.models.components.stats import StatsEncoder
from sed_uda.models.metrics import InformationMaximization
from sed_uda.models.schedules import build_lr_scheduler


@dataclass
class Domains:
    """Pooled vectors (float32) and labels of source train, target train (labels only for the upper
    bound) and target test; the speakers of source and target train (speaker-adversarial methods)."""

    source_x: Tensor
    source_y: Tensor
    target_x: Tensor
    target_y: Tensor
    test_x: Tensor
    test_y: Tensor
    source_speakers: Tensor | None = None
    target_speakers: Tensor | None = None


def load_domains(cache_dir: str | Path, direction: str, normalization: str) -> Domains:
    """The pooled vectors of one direction of a cache under a standardisation."""
    from sed_uda.experiments.diagnose import load_pooled

    corpus = load_pooled(cache_dir, direction[:2], direction[3:], normalization)
    x, y = torch.from_numpy(corpus.vectors.astype(np.float32)), torch.from_numpy(corpus.labels)
    speakers = torch.from_numpy(corpus.speakers)
    rows = {k: torch.from_numpy(v) for k, v in corpus.rows.items()}
    return Domains(
        x[rows["source_train"]],
        y[rows["source_train"]],
        x[rows["target_train"]],
        y[rows["target_train"]],
        x[rows["target_test"]],
        y[rows["target_test"]],
        speakers[rows["source_train"]],
        speakers[rows["target_train"]],
    )


def load_losses(config: Path, scale: float = 1.0) -> list[AdaptationLoss]:
    """The adaptation losses of a `configs/adaptation` file, built as LightningCLI builds them, with
    every weight multiplied by `scale`."""
    from collections.abc import Sequence as Seq

    import yaml
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--adaptations", type=Seq[AdaptationLoss], default=())
    entries = yaml.safe_load(Path(config).read_text())["model"]["adaptations"]
    losses = list(parser.instantiate_classes(parser.parse_object({"adaptations": entries})).adaptations)
    for loss in losses:
        loss.weight *= scale
    return losses


class PooledModel(nn.Module):
    """The stats encoder's MLP and the emotion classifier, on pooled vectors."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.encoder = StatsEncoder(dim // 2).net
        self.classifier = EmotionClassifier(128, len(EMOTIONS), 128, 0.3)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits of vectors (B, D) or one-frame inputs (B, D, 1)."""
        return self.classifier(self.encoder(x[..., 0] if x.dim() == 3 else x))


@dataclass
class Outcome:
    """The epoch chosen by target IM: its IM score and target-test accuracy."""

    im: float
    accuracy: float


def train_pooled(
    domains: Domains,
    losses: Sequence[AdaptationLoss],
    lr: float = 1e-3,
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 64,
    labelled: str = "source",
) -> Outcome:
    """One run; `labelled="target"` trains on target-train labels (the upper bound, chosen by target
    test accuracy as the toolkit's upper bound is chosen by target labels)."""
    torch.manual_seed(seed)
    model = PooledModel(domains.source_x.shape[1])
    for loss in losses:
        loss.bind(128, len(EMOTIONS))
    train_x, train_y, train_speakers = (
        (domains.source_x, domains.source_y, domains.source_speakers)
        if labelled == "source"
        else (domains.target_x, domains.target_y, domains.target_speakers)
    )
    parameters = [*model.parameters(), *(p for loss in losses for p in loss.parameters())]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    steps = math.ceil(len(train_x) / batch_size)
    scheduler = build_lr_scheduler(optimizer, "ganin", epochs * steps)
    ones = torch.ones(batch_size, dtype=torch.long)
    best: Outcome | None = None
    for epoch in range(epochs):
        model.train()
        for loss in losses:
            loss.train()
        order = torch.randperm(len(train_x))
        for step in range(steps):
            rows = order[step * batch_size : (step + 1) * batch_size]
            xs, ys = train_x[rows], train_y[rows]
            picks = torch.randint(0, len(domains.target_x), (batch_size,))
            xt = domains.target_x[picks]
            embedding = model.encoder(torch.cat([xs, xt]) if losses else xs)
            logits = model.classifier(embedding)
            total = F.cross_entropy(logits[: len(xs)], ys)
            if losses:
                n = len(xs)
                inputs = AdaptationInputs(
                    embedding[:n],
                    embedding[n:],
                    logits[:n],
                    logits[n:],
                    ys,
                    xt[..., None],
                    ones,
                    (epoch * steps + step) / (epochs * steps),
                    model,
                    xs[..., None],
                    ones[:n],
                    _rows_of(train_speakers, rows),
                    _rows_of(domains.target_speakers, picks),
                )
                for loss in losses:
                    total = total + loss.weight * loss(inputs)[0]
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            scheduler.step()
        outcome = evaluate(model, domains)
        key = outcome.accuracy if labelled == "target" else outcome.im
        if best is None or key > (best.accuracy if labelled == "target" else best.im):
            best = outcome
    return best


def _rows_of(values: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if values is None else values[rows]


@torch.no_grad()
def evaluate(model: PooledModel, domains: Domains) -> Outcome:
    """Target IM on unlabelled target-train and accuracy on target test."""
    model.eval()
    im = InformationMaximization(len(EMOTIONS))
    im.update(model(domains.target_x).softmax(-1))
    accuracy = (model(domains.test_x).argmax(-1) == domains.test_y).float().mean().item()
    return Outcome(float(im.compute()["im"]), accuracy)

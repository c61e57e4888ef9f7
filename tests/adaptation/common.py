"""A tiny model and random training steps for testing adaptation losses."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sed_uda.adaptation.base import AdaptationInputs

CHANNELS, FRAMES, DIM, CLASSES, SPEAKERS = 6, 20, 16, 5, 20


class TinyModel(nn.Module):
    """Masked time-mean of the frames -> linear embedding -> linear classifier (logits scaled by `scale`)."""

    def __init__(self, dim: int = DIM, classes: int = CLASSES, scale: float = 1.0) -> None:
        super().__init__()
        self.encoder = nn.Linear(CHANNELS, dim)
        self.classifier = nn.Linear(dim, classes)
        self.scale = scale

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        valid = (torch.arange(x.shape[-1]) < lengths[:, None]).float()[:, None, :]
        return self.encoder((x * valid).sum(-1) / lengths[:, None].float())

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.classifier(self.embed(x, lengths)) * self.scale


def batch(rows: int, shift: float = 0.0) -> tuple[Tensor, Tensor]:
    """Random frames (rows, CHANNELS, FRAMES), zero past random lengths, offset by `shift`."""
    lengths = torch.randint(FRAMES // 2, FRAMES + 1, (rows,))
    x = torch.randn(rows, CHANNELS, FRAMES) + shift
    x = x * (torch.arange(FRAMES) < lengths[:, None]).float()[:, None, :]
    return x, lengths


def step(
    model: TinyModel, n_source: int = 8, n_target: int = 6, shift: float = 0.0, progress: float = 0.5
) -> AdaptationInputs:
    """The inputs of one training step of `model` on random source and target batches."""
    xs, ls = batch(n_source)
    xt, lt = batch(n_target, shift)
    embedding = model.embed(torch.cat([xs, xt]), torch.cat([ls, lt]))
    logits = model.classifier(embedding) * model.scale
    return AdaptationInputs(
        source_embedding=embedding[:n_source],
        target_embedding=embedding[n_source:],
        source_logits=logits[:n_source],
        target_logits=logits[n_source:],
        source_labels=torch.randint(0, CLASSES, (n_source,)),
        target_x=xt,
        target_lengths=lt,
        progress=progress,
        classify=model,
        source_x=xs,
        source_lengths=ls,
        source_speakers=torch.randint(0, SPEAKERS // 2, (n_source,)),
        target_speakers=torch.randint(SPEAKERS // 2, SPEAKERS, (n_target,)),
    )


def from_tensors(
    source_embedding: Tensor,
    target_embedding: Tensor,
    source_logits: Tensor | None = None,
    target_logits: Tensor | None = None,
    progress: float = 0.5,
    source_speakers: Tensor | None = None,
    target_speakers: Tensor | None = None,
) -> AdaptationInputs:
    """Inputs built directly from embeddings (and logits; zeros when not given), no frames."""
    m, n = len(source_embedding), len(target_embedding)
    source_logits = torch.zeros(m, CLASSES) if source_logits is None else source_logits
    target_logits = torch.zeros(n, CLASSES) if target_logits is None else target_logits

    def no_classify(x: Tensor, lengths: Tensor) -> Tensor:
        raise AssertionError("this method should not classify other inputs")

    return AdaptationInputs(
        source_embedding=source_embedding,
        target_embedding=target_embedding,
        source_logits=source_logits,
        target_logits=target_logits,
        source_labels=torch.zeros(m, dtype=torch.long),
        target_x=torch.zeros(n, CHANNELS, FRAMES),
        target_lengths=torch.full((n,), FRAMES),
        progress=progress,
        classify=no_classify,
        source_speakers=source_speakers,
        target_speakers=target_speakers,
    )

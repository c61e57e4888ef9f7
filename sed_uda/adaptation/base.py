"""The contract of an adaptation method: a small `nn.Module` loss over one training step.

`UDAModule` computes embeddings and class logits of the labelled (source) batch and of the unlabelled
target batch, hands them to every adaptation loss as an `AdaptationInputs`, and minimises
`class loss + sum(weight_i * loss_i)`. A method never sees target labels: the inputs have none.
Methods that need parameters (a domain discriminator) build them in `bind`, once the embedding size
and the number of classes are known, before the optimiser is made.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class AdaptationInputs:
    """One training step as an adaptation loss sees it (embeddings and logits in float32).

    `classify(x, lengths)` runs the model (encoder + classifier, in training mode) on other inputs,
    for methods that need a second view of the target batch (self-training) or inputs mixed across
    domains (`source_x`, `source_lengths`: the labelled batch as the encoder saw it; domain mixup).
    `source_speakers`, `target_speakers`: each row's speaker index (speaker-adversarial training), when
    the data serves them.
    """

    source_embedding: Tensor
    target_embedding: Tensor
    source_logits: Tensor
    target_logits: Tensor
    source_labels: Tensor
    target_x: Tensor
    target_lengths: Tensor
    progress: float
    classify: Callable[[Tensor, Tensor], Tensor]
    source_x: Tensor | None = None
    source_lengths: Tensor | None = None
    source_speakers: Tensor | None = None
    target_speakers: Tensor | None = None


AdaptationOutput = tuple[Tensor, dict[str, Tensor | float]]
"""A method's loss (scalar, to be minimised) and the values it wants logged (short names)."""


class AdaptationLoss(nn.Module):
    """Base class of adaptation methods.

    Args:
        weight: trade-off of this loss in `class loss + sum(weight_i * loss_i)`.
    """

    name = "adaptation"
    """Prefix of the method's logged values (`en2zh/train/<name>_<value>`)."""

    reads_frames = False
    """Whether `forward` reads the features themselves (`target_x`, `source_x`: to augment or mix
    them), so the data must serve frames rather than pooled statistics."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        """Build parameters that depend on the model (called once by `UDAModule` before training)."""

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        raise NotImplementedError(f"{type(self).__name__} must implement forward")


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy (nats) of each row of class probabilities."""
    return torch.special.entr(probs).sum(-1)


def float32_math(tensor: Tensor) -> AbstractContextManager:
    """A context in which autocast is off on `tensor`'s device, so matrix products, decompositions
    and kernels of a method run in float32 even inside a bf16/fp16 autocast training step (casting
    the inputs with `.float()` alone does not stop autocast from running matmuls in bf16)."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)

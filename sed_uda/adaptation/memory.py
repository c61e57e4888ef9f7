"""A first-in-first-out bank of recent target embeddings and predictions, for methods that look beyond
one batch (clustering pseudo-labels, neighbourhoods, class-wise confidence thresholds).

Papers of these methods keep one slot per target utterance, indexed by dataset position; adaptation
losses here see batches without indices, so the bank keeps the last `size` target rows instead (a
MoCo-style queue; with `size` at least the target-train split and whole utterances, it covers a full
epoch). Rows are detached. The bank is a set of buffers, so checkpoints carry it and a resumed run
continues exactly; it is written only in training mode, so a method evaluated twice on the same inputs
gives the same loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TargetMemory(nn.Module):
    """The last `size` target rows: L2-normalised embeddings and class probabilities.

    Args:
        size: rows kept.
        dim: embedding size.
        classes: number of classes.
    """

    def __init__(self, size: int, dim: int, classes: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"memory size must be >= 1, got {size}")
        self.register_buffer("features", torch.zeros(size, dim))
        self.register_buffer("probs", torch.zeros(size, classes))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("position", torch.zeros((), dtype=torch.long))

    def rows(self) -> tuple[Tensor, Tensor]:
        """The stored (normalised embeddings, probabilities), oldest rows first not guaranteed."""
        n = int(self.filled)
        return self.features[:n], self.probs[:n]

    def with_batch(self, features: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
        """The stored rows followed by this batch's (normalised, detached) rows."""
        stored_features, stored_probs = self.rows()
        batch_features = F.normalize(features.detach().float(), dim=1)
        return (
            torch.cat([stored_features, batch_features]),
            torch.cat([stored_probs, probs.detach().float()]),
        )

    @torch.no_grad()
    def push(self, features: Tensor, probs: Tensor) -> None:
        """Store a batch (training mode only), overwriting the oldest rows when full."""
        if not self.training:
            return
        size = len(self.features)
        features, probs = features[-size:], probs[-size:]
        slots = (self.position + torch.arange(len(features), device=features.device)) % size
        self.features[slots] = F.normalize(features.detach().float(), dim=1)
        self.probs[slots] = probs.detach().float()
        self.position.copy_((self.position + len(features)) % size)
        self.filled.copy_(torch.clamp(self.filled + len(features), max=size))

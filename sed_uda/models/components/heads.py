"""The emotion classifier on top of an utterance embedding."""

from __future__ import annotations

import torch
from torch import nn


class EmotionClassifier(nn.Module):
    """MLP from an embedding to emotion logits (one hidden layer; `hidden=0` gives a linear head)."""

    def __init__(self, in_dim: int, num_classes: int = 5, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(in_dim, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_classes))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding)

"""The domain discriminator of the adversarial methods (DANN, CDAN)."""

from __future__ import annotations

import torch
from torch import nn


class DomainDiscriminator(nn.Module):
    """Ganin et al.'s discriminator: two hidden ReLU layers -> one logit (source = 0, target = 1)."""

    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Domain logits of shape (batch,)."""
        return self.net(embedding).squeeze(-1)

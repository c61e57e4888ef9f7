"""Gradient reversal (Ganin & Lempitsky, 2015): identity forward, scaled negated gradient backward.

Placed between the encoder and the domain discriminator, it lets one optimiser step train the
discriminator to tell domains apart while pushing the encoder to make them indistinguishable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class GradientReverseFunction(torch.autograd.Function):
    """Autograd function: `forward(x, coeff) = x`, `backward(g) = -coeff * g` (no gradient for coeff)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.coeff, None


class GradientReversalLayer(nn.Module):
    """Module form of `GradientReverseFunction`; set `coeff` (the GRL lambda) before each forward."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return GradientReverseFunction.apply(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"

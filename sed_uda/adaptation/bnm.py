"""BNM: batch nuclear-norm maximisation (Cui et al., CVPR 2020, "Towards discriminability and
diversity: batch nuclear-norm maximization under label insufficient situations").

On the (B, K) matrix A of target class probabilities, a larger nuclear norm (sum of singular values)
means both confident rows (discriminability) and many predicted classes (diversity):

    L = -||A||_* / B,   A = softmax(target logits).

Bounded: 0 >= L >= -sqrt(min(B, K) B) / B; with one-hot rows it is -sqrt(number of rows of each
class) summed over classes, divided by B.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math


def bnm_loss(logits: Tensor) -> Tensor:
    """`-||softmax(logits)||_* / B` in float32 (svdvals has stable gradients even for repeated values)."""
    with float32_math(logits):
        probs = logits.float().softmax(-1)
        return -torch.linalg.svdvals(probs).sum() / len(probs)


class BNM(AdaptationLoss):
    """Batch nuclear-norm maximisation of the target predictions (minimises `-||A||_* / B`).

    Args:
        weight: trade-off of the BNM loss.
    """

    name = "bnm"

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        loss = bnm_loss(inputs.target_logits)
        return loss, {"loss": loss}

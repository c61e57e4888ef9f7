"""MCC: minimum class confusion (Jin et al., ECCV 2020, "Minimum class confusion for versatile domain
adaptation").

On the target logits z (B rows, K classes), with temperature T:

    Y = softmax(z / T),   H_i = entropy(Y_i),
    W = diag(B (1 + exp(-H_i)) / sum_j (1 + exp(-H_j)))       (confident rows count more; detached),
    C = Y^T W Y,   C~_jk = C_jk / sum_k' C_jk'                 (each class's row normalised),
    L = (sum_jk C~_jk - trace C~) / K                          (confusion between different classes).

L is 0 when every row is one-hot and (K - 1)/K when every row is uniform.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, entropy, float32_math


def class_confusion(logits: Tensor, temperature: float = 2.5) -> Tensor:
    """The row-normalised (K, K) class confusion matrix C~ of a batch of logits (float32)."""
    with float32_math(logits):
        probs = (logits.float() / temperature).softmax(-1)
        weights = 1.0 + torch.exp(-entropy(probs).detach())
        weights = len(probs) * weights / weights.sum()
        confusion = (probs * weights[:, None]).T @ probs
        return confusion / confusion.sum(1, keepdim=True)


def mcc_loss(logits: Tensor, temperature: float = 2.5) -> Tensor:
    """`(sum C~ - trace C~) / K`: the mean off-diagonal mass of the row-normalised confusion."""
    confusion = class_confusion(logits, temperature)
    return (confusion.sum() - confusion.trace()) / len(confusion)


class MCC(AdaptationLoss):
    """Minimum class confusion on the target predictions.

    Args:
        weight: trade-off of the MCC loss (1.0 in the paper and TLlib).
        temperature: temperature T of the softmax (2.5 in the paper).
    """

    name = "mcc"

    def __init__(self, weight: float = 1.0, temperature: float = 2.5) -> None:
        super().__init__(weight)
        if temperature <= 0:
            raise ValueError(f"MCC: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        loss = mcc_loss(inputs.target_logits, self.temperature)
        return loss, {"loss": loss}

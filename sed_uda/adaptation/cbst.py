"""Class-balanced self-training (Zou, Yu, Vijaya Kumar & Wang, ECCV 2018, "Unsupervised domain
adaptation for semantic segmentation via class-balanced self-training").

Self-training with one confidence threshold lets the easiest classes take every pseudo-label; CBST
gives each class its own threshold, the confidence above which the top fraction r of the target rows
predicted as that class lie, so every predicted class contributes pseudo-labels:

    ŷ_i = argmax_k p_ik,   t_k = (1 - r)-quantile of { max p_j : ŷ_j = k },
    L   = 1/B sum_i 1[max p_i >= t_{ŷ_i}] CE(z_i, ŷ_i),
    r(p) = r_0 + (r_max - r_0) p   over training progress p (the paper's growing portion).

The thresholds are computed in every step over `TargetMemory` (the last `memory` target predictions)
plus the batch, all detached (the paper ranks the whole target set once per round).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math
from sed_uda.adaptation.memory import TargetMemory


def class_thresholds(probs: Tensor, portion: float) -> Tensor:
    """Per class k, the (1 - portion)-quantile of the confidences of rows predicted k (inf for a class
    nobody predicts)."""
    confidence, predicted = probs.max(1)
    thresholds = torch.full((probs.shape[1],), float("inf"), device=probs.device)
    for k in predicted.unique():
        thresholds[k] = torch.quantile(confidence[predicted == k], 1.0 - portion)
    return thresholds


class ClassBalancedSelfTraining(AdaptationLoss):
    """Cross-entropy to the target's own predictions, on the most confident fraction of each class.

    Args:
        weight: trade-off of the self-training loss.
        start_portion: fraction r_0 of each predicted class pseudo-labelled at the start.
        end_portion: fraction r_max at the end of training.
        memory: stored target predictions the thresholds are computed over, besides the batch.
    """

    name = "cbst"

    def __init__(
        self, weight: float = 1.0, start_portion: float = 0.2, end_portion: float = 0.5, memory: int = 1024
    ) -> None:
        super().__init__(weight)
        if not 0.0 < start_portion <= end_portion <= 1.0:
            raise ValueError(
                "ClassBalancedSelfTraining: need 0 < start_portion <= end_portion <= 1, "
                f"got {start_portion}, {end_portion}"
            )
        self.start_portion, self.end_portion = float(start_portion), float(end_portion)
        self.memory_size = int(memory)

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        self.memory = TargetMemory(self.memory_size, embedding_dim, num_classes)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        portion = self.start_portion + (self.end_portion - self.start_portion) * inputs.progress
        with float32_math(inputs.target_logits):
            logits = inputs.target_logits.float()
            probs = logits.detach().softmax(-1)
            _, bank_probs = self.memory.with_batch(inputs.target_embedding, probs)
            thresholds = class_thresholds(bank_probs, portion)
            confidence, labels = probs.max(1)
            mask = (confidence >= thresholds[labels]).float()
            loss = (F.cross_entropy(logits, labels, reduction="none") * mask).sum() / len(mask)
        self.memory.push(inputs.target_embedding, probs)
        return loss, {"loss": loss, "mask_rate": mask.mean(), "portion": portion}

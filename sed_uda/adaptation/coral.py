"""Deep CORAL: correlation alignment (Sun & Saenko, ECCV Workshops 2016, "Deep CORAL: correlation
alignment for deep domain adaptation").

Matches the second-order statistics of source and target embeddings f (d dimensions):

    L = ||C_s - C_t||_F^2 / (4 d^2),   C = 1/(n - 1) (f - mean f)^T (f - mean f)   (per domain).
"""

from __future__ import annotations

from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math


def covariance(features: Tensor) -> Tensor:
    """Unbiased (d, d) covariance of the rows of `features` (n >= 2 rows)."""
    centred = features - features.mean(0, keepdim=True)
    return centred.T @ centred / (len(features) - 1)


def coral_loss(source: Tensor, target: Tensor) -> Tensor:
    """`||C_s - C_t||_F^2 / (4 d^2)` of two (n, d) batches, in float32."""
    with float32_math(source):
        source, target = source.float(), target.float()
        dim = source.shape[1]
        return (covariance(source) - covariance(target)).pow(2).sum() / (4 * dim * dim)


class CORAL(AdaptationLoss):
    """Deep CORAL loss between the source and target embeddings' covariances.

    The 1/(4 d^2) of the paper makes the loss small (it averages squared covariance differences);
    the paper picks the weight so that it is about the size of the class loss by the end of training.

    Args:
        weight: trade-off of the CORAL loss.
    """

    name = "coral"

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        loss = coral_loss(inputs.source_embedding, inputs.target_embedding)
        return loss, {"loss": loss}

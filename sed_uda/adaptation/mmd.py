"""Multi-kernel MMD, as in DAN (Long et al., ICML 2015, "Learning transferable features with deep
adaptation networks").

The squared maximum mean discrepancy between source embeddings x (m rows) and target embeddings y
(n rows) under a sum of Gaussian kernels k(a, b) = sum_u exp(-||a - b||^2 / s_u), with bandwidths
s_u = s * kernel_mul^(u - kernel_num // 2), u = 0..kernel_num-1, around the mean squared pairwise
distance s of the pooled batch (detached: the bandwidths follow the data, they are not optimised):

    unbiased:  MMD^2 = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j)
                       - 2/(mn) sum_{i,j} k(x_i, y_j)
    biased:    the same with the diagonals included and 1/m^2, 1/n^2.

The unbiased estimate is 0 in expectation when both domains share a distribution (so it can be
slightly negative on a batch); the biased one is >= 0. The sizes m and n may differ.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math


def squared_distances(points: Tensor) -> Tensor:
    """(N, N) squared Euclidean distances between rows, exactly 0 on the diagonal."""
    norms = points.pow(2).sum(1)
    distances = (norms[:, None] + norms[None, :] - 2.0 * points @ points.T).clamp_min(0.0)
    eye = torch.eye(len(points), dtype=torch.bool, device=points.device)
    return distances.masked_fill(eye, 0.0)


def multi_kernel(points: Tensor, kernel_mul: float = 2.0, kernel_num: int = 5) -> Tensor:
    """(N, N) sum of `kernel_num` Gaussian kernels, bandwidths `kernel_mul`-spaced around the mean
    squared pairwise distance (off the diagonal)."""
    distances = squared_distances(points)
    count = len(points)
    mean = (distances.detach().sum() / max(count * count - count, 1)).clamp_min(1e-12)
    exponents = torch.arange(kernel_num, device=points.device, dtype=points.dtype) - kernel_num // 2
    bandwidths = mean * kernel_mul**exponents
    return torch.exp(-distances[None] / bandwidths[:, None, None]).sum(0)


def mmd_loss(
    source: Tensor, target: Tensor, kernel_mul: float = 2.0, kernel_num: int = 5, unbiased: bool = True
) -> Tensor:
    """Multi-kernel MMD^2 between (m, d) and (n, d) batches, in float32 (unbiased needs m, n >= 2)."""
    with float32_math(source):
        source, target = source.float(), target.float()
        m, n = len(source), len(target)
        kernel = multi_kernel(torch.cat([source, target]), kernel_mul, kernel_num)
        k_ss, k_tt, k_st = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
        if unbiased:
            if m < 2 or n < 2:
                raise ValueError(f"unbiased MMD needs >= 2 rows per domain, got {m} source and {n} target")
            within_s = (k_ss.sum() - k_ss.diagonal().sum()) / (m * (m - 1))
            within_t = (k_tt.sum() - k_tt.diagonal().sum()) / (n * (n - 1))
        else:
            within_s, within_t = k_ss.mean(), k_tt.mean()
        return within_s + within_t - 2.0 * k_st.mean()


class MMD(AdaptationLoss):
    """Multi-kernel maximum mean discrepancy between source and target embeddings (DAN).

    Args:
        weight: trade-off of the MMD loss (1.0 in TLlib's DAN).
        kernel_mul: ratio between consecutive Gaussian bandwidths.
        kernel_num: number of Gaussian kernels.
        unbiased: the unbiased quadratic estimate (True) or the biased one (False).
    """

    name = "mmd"

    def __init__(
        self, weight: float = 1.0, kernel_mul: float = 2.0, kernel_num: int = 5, unbiased: bool = True
    ) -> None:
        super().__init__(weight)
        if kernel_mul <= 0 or kernel_num < 1:
            raise ValueError(f"MMD: need kernel_mul > 0 and kernel_num >= 1, got {kernel_mul}, {kernel_num}")
        self.kernel_mul, self.kernel_num, self.unbiased = float(kernel_mul), int(kernel_num), unbiased

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        loss = mmd_loss(
            inputs.source_embedding, inputs.target_embedding, self.kernel_mul, self.kernel_num, self.unbiased
        )
        return loss, {"loss": loss}

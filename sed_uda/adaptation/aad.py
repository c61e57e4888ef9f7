"""AaD: attracting and dispersing (Yang, Wang, van de Weijer, Herranz & Jui, NeurIPS 2022, "Attracting
and dispersing: a simple approach for source-free domain adaptation"), the simplified form of
neighbourhood reciprocal clustering (NRC, Yang et al., NeurIPS 2021).

Target rows that lie close in embedding space should be predicted alike (attract), and rows of a
batch should not all be predicted alike (disperse). With p_i = softmax(z_i) for the B target rows of
the batch and N_K(i) the K stored target rows nearest to row i by cosine similarity of embeddings
(their stored predictions p_j are constants):

    L = -1/B sum_i sum_{j in N_K(i)} p_i . p_j  +  α(p) 1/B sum_i sum_{m != i} p_i . p_m,
    α(p) = α_0 (1 + 10 p)^(-γ)    over training progress p (the paper's decaying dispersion).

Neighbours are searched in `TargetMemory` (the last `memory` target rows) plus the other rows of the
batch; the paper keeps one slot per target utterance. K = 5 and α_0 = 1 as in the paper; γ = 0.75.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math
from sed_uda.adaptation.memory import TargetMemory


def attract_disperse(probs: Tensor, neighbour_probs: Tensor, alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, attraction, dispersion) of batch probabilities (B, C) and their neighbours' (B, K, C)."""
    attraction = (probs[:, None, :] * neighbour_probs).sum(-1).sum(-1).mean()
    similarity = probs @ probs.T
    dispersion = (similarity.sum(1) - similarity.diagonal()).mean()
    return -attraction + alpha * dispersion, attraction, dispersion


def nearest_neighbours(features: Tensor, bank: Tensor, k: int, exclude: Tensor) -> Tensor:
    """Indices (B, k) of the k bank rows most cosine-similar to each normalised feature row, never a
    pair marked in `exclude` (B, len(bank)) (a row itself)."""
    similarity = (features @ bank.T).masked_fill(exclude, float("-inf"))
    return similarity.topk(k, dim=1).indices


class AaD(AdaptationLoss):
    """Attract target predictions to those of their embedding neighbours, disperse the rest.

    Args:
        weight: trade-off of the AaD loss against the source class loss.
        k: neighbours per target row (K).
        alpha: dispersion weight α_0 at the start of training.
        gamma: decay exponent γ of α over training progress.
        memory: stored target rows the neighbours are searched in, besides the batch.
    """

    name = "aad"

    def __init__(
        self, weight: float = 1.0, k: int = 5, alpha: float = 1.0, gamma: float = 0.75, memory: int = 1024
    ) -> None:
        super().__init__(weight)
        if k < 1 or alpha < 0 or gamma < 0:
            raise ValueError(f"AaD: need k >= 1, alpha >= 0, gamma >= 0; got {k}, {alpha}, {gamma}")
        self.k, self.alpha, self.gamma, self.memory_size = int(k), float(alpha), float(gamma), int(memory)

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        self.memory = TargetMemory(self.memory_size, embedding_dim, num_classes)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        with float32_math(inputs.target_logits):
            probs = inputs.target_logits.float().softmax(-1)
            features, bank_probs = self.memory.with_batch(inputs.target_embedding, probs)
            batch = len(probs)
            stored = len(features) - batch
            exclude = torch.zeros(batch, len(features), dtype=torch.bool, device=probs.device)
            exclude[torch.arange(batch), stored + torch.arange(batch)] = True
            k = min(self.k, len(features) - 1)
            neighbours = nearest_neighbours(features[stored:], features, k, exclude)
            alpha = self.alpha * (1.0 + 10.0 * inputs.progress) ** (-self.gamma)
            loss, attraction, dispersion = attract_disperse(probs, bank_probs[neighbours], alpha)
        self.memory.push(inputs.target_embedding, probs)
        return loss, {"loss": loss, "attraction": attraction, "dispersion": dispersion, "alpha": alpha}

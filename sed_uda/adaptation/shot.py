"""SHOT-IM with clustering pseudo-labels (Liang, Hu & Feng, ICML 2020, "Do we really need to access the
source data? Source hypothesis transfer for unsupervised domain adaptation").

Information maximisation makes target predictions p_i = softmax(z_i) confident and, over the batch,
diverse; pseudo-labels from a weighted k-means of the target embeddings then correct them:

    L_IM  = 1/B sum_i H(p_i) - H(1/B sum_i p_i),
    c_k   = sum_j p_jk f_j / sum_j p_jk,     ŷ_j = argmax_k cos(f_j, c_k)   (then once more with
            c_k = mean of the f_j labelled k, as the paper does),
    L     = L_IM + β 1/B sum_i CE(z_i, ŷ_i).

The paper clusters the whole target set once per epoch; here the clusters are computed in every step
over the target rows of `TargetMemory` (the last `memory` target embeddings and predictions) plus the
batch, all detached, so the pseudo-labels follow the model as it adapts. β = 0.3 as in the paper.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, entropy, float32_math
from sed_uda.adaptation.memory import TargetMemory


def information_maximization(logits: Tensor) -> Tensor:
    """`mean_i H(p_i) - H(mean_i p_i)`: low for confident rows spread over the classes."""
    probs = logits.float().softmax(-1)
    return entropy(probs).mean() - entropy(probs.mean(0, keepdim=True)).squeeze(0)


def cluster_labels(features: Tensor, probs: Tensor, rounds: int = 2) -> Tensor:
    """Pseudo-labels of L2-normalised `features` by prediction-weighted k-means with cosine
    similarity: soft centroids from `probs`, then `rounds - 1` hard refinements."""
    weights = probs
    for _ in range(rounds):
        centroids = F.normalize(weights.T @ features, dim=1)
        labels = (features @ centroids.T).argmax(1)
        weights = F.one_hot(labels, probs.shape[1]).float()
    return labels


class SHOTIM(AdaptationLoss):
    """Information maximisation plus cross-entropy to clustering pseudo-labels of the target.

    Args:
        weight: trade-off of the whole SHOT loss against the source class loss.
        beta: weight β of the pseudo-label cross-entropy inside it (0 gives SHOT-IM alone).
        memory: target rows the clusters are computed over, besides the batch.
    """

    name = "shot"

    def __init__(self, weight: float = 1.0, beta: float = 0.3, memory: int = 1024) -> None:
        super().__init__(weight)
        if beta < 0:
            raise ValueError(f"SHOTIM: beta must be >= 0, got {beta}")
        self.beta, self.memory_size = float(beta), int(memory)

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        self.memory = TargetMemory(self.memory_size, embedding_dim, num_classes)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        with float32_math(inputs.target_logits):
            logits = inputs.target_logits.float()
            im = information_maximization(logits)
            probs = logits.detach().softmax(-1)
            features, bank_probs = self.memory.with_batch(inputs.target_embedding, probs)
            labels = cluster_labels(features, bank_probs)[-len(logits) :]
            pseudo = F.cross_entropy(logits, labels)
            agreement = (labels == probs.argmax(-1)).float().mean()
        self.memory.push(inputs.target_embedding, probs)
        loss = im + self.beta * pseudo
        return loss, {"loss": loss, "im": im, "pseudo_ce": pseudo, "agreement": agreement}

"""CDAN and CDAN+E: conditional domain-adversarial networks (Long et al., NeurIPS 2018, "Conditional
adversarial domain adaptation").

The domain discriminator D sees the embedding f conditioned on the class prediction g = softmax(logits)
(detached, as in the authors' code) through the multilinear map

    T(f, g) = f ⊗ g  (flattened, d K values)                       if d K <= max_dim,
    T(f, g) = (R_f f) ⊙ (R_g g) / sqrt(r)  (fixed Gaussian R_f, R_g, r = randomized_dim)  otherwise,

behind the gradient-reversal layer R_λ with DANN's schedule λ(p) = λ_max (2 / (1 + exp(-γ p)) - 1):

    L = 1/2 [ sum_s w_s BCE(D(R_λ(T_s)), 0) / sum_s w_s + sum_t w_t BCE(D(R_λ(T_t)), 1) / sum_t w_t ].

CDAN: w = 1. CDAN+E (`entropy=True`): w = 1 + exp(-H(g)) (detached), so confident predictions,
which are more transferable, weigh more; the weights are normalised within each domain.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sed_uda.adaptation.base import AdaptationInputs, AdaptationOutput, entropy, float32_math
from sed_uda.adaptation.dann import DANN
from sed_uda.adaptation.discriminator import DomainDiscriminator


class MultilinearMap(nn.Module):
    """`f ⊗ g` flattened: (B, d) x (B, K) -> (B, d K)."""

    def forward(self, features: Tensor, predictions: Tensor) -> Tensor:
        return (features[:, :, None] * predictions[:, None, :]).flatten(1)


class RandomizedMultilinearMap(nn.Module):
    """`(f R_f) ⊙ (g R_g) / sqrt(r)` with fixed standard-normal R_f (d, r), R_g (K, r): an unbiased
    estimate of the multilinear map's inner products in r dimensions. R_f and R_g are buffers (saved
    with the model, moved with it, never trained), drawn from torch's global generator."""

    def __init__(self, features_dim: int, num_classes: int, output_dim: int = 1024) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.register_buffer("features_matrix", torch.randn(features_dim, output_dim))
        self.register_buffer("predictions_matrix", torch.randn(num_classes, output_dim))

    def forward(self, features: Tensor, predictions: Tensor) -> Tensor:
        projected = (features @ self.features_matrix) * (predictions @ self.predictions_matrix)
        return projected / math.sqrt(self.output_dim)


class CDAN(DANN):
    """Conditional domain-adversarial loss; `entropy=True` is CDAN+E.

    Args:
        weight: trade-off of the domain loss (1.0 in the paper and TLlib).
        entropy: weight rows by the certainty of their prediction, 1 + exp(-H(g)) (CDAN+E).
        max_dim: largest d K for the exact multilinear map (4096 in the paper); above it, the
            randomized map.
        randomized_dim: output size r of the randomized map (1024 in the paper).
        lambda_max: final GRL coefficient.
        gamma: steepness of the GRL schedule.
        hidden: hidden units of the discriminator's two layers.
        dropout: dropout of the discriminator.
    """

    name = "cdan"

    def __init__(
        self,
        weight: float = 1.0,
        entropy: bool = True,
        max_dim: int = 4096,
        randomized_dim: int = 1024,
        lambda_max: float = 1.0,
        gamma: float = 10.0,
        hidden: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__(weight, lambda_max, gamma, hidden, dropout)
        if max_dim < 1 or randomized_dim < 1:
            raise ValueError(f"CDAN: need max_dim, randomized_dim >= 1, got {max_dim}, {randomized_dim}")
        self.entropy, self.max_dim, self.randomized_dim = entropy, max_dim, randomized_dim
        self.map: nn.Module | None = None

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        if embedding_dim * num_classes <= self.max_dim:
            self.map, in_dim = MultilinearMap(), embedding_dim * num_classes
        else:
            self.map = RandomizedMultilinearMap(embedding_dim, num_classes, self.randomized_dim)
            in_dim = self.randomized_dim
        self.discriminator = DomainDiscriminator(in_dim, self.hidden, self.dropout)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        if self.discriminator is None:
            raise RuntimeError("CDAN: call bind(embedding_dim, num_classes) before the first forward")
        with float32_math(inputs.source_embedding):
            features = torch.cat([inputs.source_embedding, inputs.target_embedding]).float()
            predictions = torch.cat([inputs.source_logits, inputs.target_logits]).float().softmax(-1).detach()
            conditioned = self.map(features, predictions)
        weights = 1.0 + torch.exp(-entropy(predictions)) if self.entropy else None
        return self.adversarial(conditioned, len(inputs.source_embedding), inputs.progress, weights)

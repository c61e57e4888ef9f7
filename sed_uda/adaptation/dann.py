"""DANN: domain-adversarial training (Ganin et al., JMLR 2016, "Domain-adversarial training of
neural networks").

A domain discriminator D learns to tell source (0) from target (1) embeddings f; a gradient-reversal
layer between f and D makes the same step push the encoder to confuse it:

    L = 1/2 [ BCE(D(R_λ(f_s)), 0) + BCE(D(R_λ(f_t)), 1) ],   R_λ(f) = f forward, -λ ∂ backward,
    λ(p) = λ_max (2 / (1 + exp(-γ p)) - 1)   over training progress p in [0, 1].

λ depends only on progress, so a resumed run continues the schedule exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput
from sed_uda.adaptation.discriminator import DomainDiscriminator
from sed_uda.adaptation.grl import GradientReversalLayer


def grl_lambda(progress: float, lambda_max: float = 1.0, gamma: float = 10.0) -> float:
    """GRL coefficient `lambda_max * (2 / (1 + exp(-gamma * p)) - 1)`: 0 at p=0, near lambda_max at p=1."""
    return lambda_max * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def domain_adversarial_loss(domain_logits: Tensor, n_source: int, weights: Tensor | None = None) -> Tensor:
    """BCE of discriminator logits (first `n_source` rows source = 0, the rest target = 1), the two
    domains weighted equally; optional per-row `weights` (normalised within each domain)."""
    domain = torch.cat(
        [domain_logits.new_zeros(n_source), domain_logits.new_ones(len(domain_logits) - n_source)]
    )
    per_row = F.binary_cross_entropy_with_logits(domain_logits, domain, reduction="none")
    if weights is None:
        return 0.5 * (per_row[:n_source].mean() + per_row[n_source:].mean())
    source_w, target_w = weights[:n_source], weights[n_source:]
    return 0.5 * (
        (per_row[:n_source] * source_w).sum() / source_w.sum()
        + (per_row[n_source:] * target_w).sum() / target_w.sum()
    )


def domain_accuracy(domain_logits: Tensor, n_source: int) -> Tensor:
    """Fraction of rows the discriminator assigns to the right domain."""
    predicted_target = domain_logits > 0
    return torch.cat([~predicted_target[:n_source], predicted_target[n_source:]]).float().mean()


class DANN(AdaptationLoss):
    """Domain-adversarial loss with an annealed gradient-reversal coefficient.

    Args:
        weight: trade-off of the domain loss.
        lambda_max: final GRL coefficient.
        gamma: steepness of the GRL schedule.
        hidden: hidden units of the discriminator's two layers.
        dropout: dropout of the discriminator.
    """

    name = "dann"

    def __init__(
        self,
        weight: float = 1.0,
        lambda_max: float = 1.0,
        gamma: float = 10.0,
        hidden: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__(weight)
        self.lambda_max, self.gamma = lambda_max, gamma
        self.hidden, self.dropout = hidden, dropout
        self.grl = GradientReversalLayer(0.0)
        self.discriminator: DomainDiscriminator | None = None

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        self.discriminator = DomainDiscriminator(embedding_dim, self.hidden, self.dropout)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        features = torch.cat([inputs.source_embedding, inputs.target_embedding])
        return self.adversarial(features, len(inputs.source_embedding), inputs.progress)

    def adversarial(
        self, features: Tensor, n_source: int, progress: float, weights: Tensor | None = None
    ) -> AdaptationOutput:
        """The discriminator's loss on `features` (first `n_source` rows source) behind the reversal
        layer at the scheduled coefficient; shared by the conditional variant (CDAN)."""
        self.grl.coeff = grl_lambda(progress, self.lambda_max, self.gamma)
        domain_logits = self.discriminator(self.grl(features)).float()
        loss = domain_adversarial_loss(domain_logits, n_source, weights)
        accuracy = domain_accuracy(domain_logits, n_source)
        return loss, {"loss": loss, "domain_acc": accuracy, "lambda": self.grl.coeff}

"""Label-free model-selection signals computed over a validation epoch.

- `SoftNeighborhoodDensity` (SND; Saito et al., ICCV 2021, "Tune it the right way"): a good target
  model puts each target sample in a dense neighbourhood of samples with similar predictions.
  With L2-normalised softmax outputs p_i, s_ij = softmax_j(p_i . p_j / τ) over j != i, and
  SND = mean_i H(s_i) (higher is better).
- `DeepEmbeddedValidation` (DEV; You et al., ICML 2019): the source-validation loss importance-weighted
  by the density ratio w(x) = p_target(x) / p_source(x), estimated by a domain classifier on the
  embeddings, with a control variate that cuts its variance:
  DEV = mean(w l) + η mean(w) - η, η = -Cov(w l, w) / Var(w) (lower is better).

Both use unlabelled target-train and labelled *source* data only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class SoftNeighborhoodDensity(Metric):
    """SND of an epoch of target class probabilities (at most `max_samples`, evenly spaced)."""

    full_state_update = False

    def __init__(self, temperature: float = 0.05, max_samples: int = 4096, **kwargs) -> None:
        super().__init__(**kwargs)
        self.temperature, self.max_samples = temperature, max_samples
        self.add_state("probs", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor) -> None:
        self.probs.append(probs.float())

    def compute(self) -> torch.Tensor:
        probs = dim_zero_cat(self.probs)
        if len(probs) > self.max_samples:
            probs = probs[torch.linspace(0, len(probs) - 1, self.max_samples, device=probs.device).long()]
        features = F.normalize(probs, dim=1)
        similarity = features @ features.T / self.temperature
        similarity.fill_diagonal_(float("-inf"))
        neighbours = similarity.softmax(dim=1)
        return torch.special.entr(neighbours).sum(1).mean()


class DeepEmbeddedValidation(Metric):
    """DEV risk from source-validation embeddings + per-sample losses and target embeddings."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("source_embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("source_losses", default=[], dist_reduce_fx="cat")
        self.add_state("target_embeddings", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, losses: torch.Tensor | None = None) -> None:
        """Source rows come with their losses; target rows without."""
        if losses is None:
            self.target_embeddings.append(embeddings.float())
        else:
            self.source_embeddings.append(embeddings.float())
            self.source_losses.append(losses.float())

    def compute(self) -> torch.Tensor:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        source = dim_zero_cat(self.source_embeddings).cpu().double().numpy()
        target = dim_zero_cat(self.target_embeddings).cpu().double().numpy()
        losses = dim_zero_cat(self.source_losses).cpu().double().numpy()
        if not (np.isfinite(source).all() and np.isfinite(target).all() and np.isfinite(losses).all()):
            return torch.tensor(float("nan"))  # a diverged model: no epoch to pick here, not a crashed grid
        x = StandardScaler().fit_transform(np.concatenate([source, target]))
        domain = np.r_[np.zeros(len(source)), np.ones(len(target))]
        p_target = LogisticRegression(max_iter=1000).fit(x, domain).predict_proba(x[: len(source)])[:, 1]
        weights = p_target / np.clip(1 - p_target, 1e-6, None) * len(source) / len(target)
        return torch.tensor(control_variate_risk(weights, losses), dtype=torch.float32)


def control_variate_risk(weights: np.ndarray, losses: np.ndarray) -> float:
    """mean(w l) + η mean(w) - η with η = -Cov(w l, w) / Var(w) (0 when the weights do not vary)."""
    weighted = weights * losses
    variance = weights.var(ddof=1)
    eta = -np.cov(weighted, weights)[0, 1] / variance if variance > 0 else 0.0
    return float(weighted.mean() + eta * weights.mean() - eta)

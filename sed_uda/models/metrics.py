"""Evaluation metrics: one classification collection per stage and domain, plus label-free signals."""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)

CONFUSION = "confusion"


def classification_metrics(num_classes: int) -> MetricCollection:
    """acc, f1 (macro), uar, per-class f1 and the confusion matrix, updated with (probs, target)."""
    return MetricCollection(
        {
            # torchmetrics' multiclass default is average="macro"; plain accuracy needs "micro".
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
            # Macro recall is the unweighted average recall (UAR) reported in emotion recognition.
            "uar": MulticlassRecall(num_classes, average="macro"),
            "f1_per_class": MulticlassF1Score(num_classes, average=None),
            CONFUSION: MulticlassConfusionMatrix(num_classes),
        }
    )


def flatten_classification(
    results: dict[str, torch.Tensor], class_names: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Scalar metrics from a `classification_metrics` result: per-class F1 becomes `f1_<class>`,
    the confusion matrix is left out (it is not a scalar)."""
    flat = {name: value for name, value in results.items() if name not in (CONFUSION, "f1_per_class")}
    for name, value in zip(class_names, results["f1_per_class"], strict=True):
        flat[f"f1_{name}"] = value
    return flat


class InformationMaximization(Metric):
    """Label-free selection signals over a whole epoch of class probabilities.

    `entropy` is the mean prediction entropy (confidence; lower is more confident) and `im` the
    information-maximisation score H(mean p) - mean H(p) (confident *and* diverse; higher is better).
    Entropies are in nats, so im lies in [0, log(num_classes)].
    """

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state(
            "prob_sum", default=torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("entropy_sum", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor) -> None:
        probs = probs.double()
        self.prob_sum += probs.sum(0)
        self.entropy_sum += _entropy(probs).sum()
        self.count += probs.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        count = self.count.clamp_min(1.0)
        mean_entropy = self.entropy_sum / count
        marginal_entropy = _entropy(self.prob_sum / count)
        return {"entropy": mean_entropy.float(), "im": (marginal_entropy - mean_entropy).float()}


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last axis; 0 * log 0 counts as 0."""
    return torch.special.entr(probs).sum(-1)

"""Metric collections and the label-free selection signals."""

from __future__ import annotations

import math

import pytest
import torch

from sed_uda.models.metrics import InformationMaximization, classification_metrics, flatten_classification


def test_accuracy_is_micro_and_uar_is_macro_recall() -> None:
    metrics = classification_metrics(3)
    target = torch.tensor([0, 0, 0, 0, 1, 2])
    preds = torch.tensor([0, 0, 0, 0, 2, 2])
    metrics.update(torch.nn.functional.one_hot(preds, 3).float(), target)
    flat = flatten_classification(metrics.compute(), ("a", "b", "c"))
    assert flat["acc"] == pytest.approx(5 / 6)
    assert flat["uar"] == pytest.approx((1 + 0 + 1) / 3)
    assert flat["f1_b"] == 0 and flat["f1_a"] == 1
    assert "confusion" not in flat and "f1_per_class" not in flat
    assert metrics.compute()["confusion"].tolist() == [[4, 0, 0], [0, 0, 1], [0, 0, 1]]


def test_information_maximization_prefers_confident_diverse_predictions() -> None:
    confident_diverse = InformationMaximization(4)
    confident_diverse.update(torch.eye(4)[:2])  # accumulated over batches
    confident_diverse.update(torch.eye(4)[2:])
    assert confident_diverse.compute()["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert confident_diverse.compute()["im"] == pytest.approx(math.log(4))

    collapsed = InformationMaximization(4)
    collapsed.update(torch.eye(4)[[1, 1, 1, 1]])
    assert collapsed.compute()["im"] == pytest.approx(0.0, abs=1e-6)

    uncertain = InformationMaximization(4)
    uncertain.update(torch.full((3, 4), 0.25))
    assert uncertain.compute()["entropy"] == pytest.approx(math.log(4))
    assert uncertain.compute()["im"] == pytest.approx(0.0, abs=1e-6)

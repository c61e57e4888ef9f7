from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sed_uda.adaptation.shot import SHOTIM, cluster_labels, information_maximization
from tests.adaptation.common import from_tensors


def test_information_maximization_is_minus_log_k_for_confident_diverse_rows() -> None:
    confident_diverse = torch.eye(5) * 100.0
    assert information_maximization(confident_diverse).item() == pytest.approx(-math.log(5), abs=1e-4)
    assert information_maximization(torch.zeros(6, 5)).item() == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.tensor([[100.0, 0, 0, 0, 0]]).repeat(6, 1)
    assert information_maximization(collapsed).item() == pytest.approx(0.0, abs=1e-4)


def test_clusters_correct_predictions_that_disagree_with_the_embedding() -> None:
    """Two tight clusters; the model's soft predictions get two rows of cluster 0 wrong."""
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    truth = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    features = F.normalize(centres[truth] + 0.05 * torch.randn(10, 3), dim=1)
    predicted = truth.clone()
    predicted[:2] = 1
    probs = 0.3 + 0.4 * F.one_hot(predicted, 2).float()
    assert torch.equal(cluster_labels(features, probs), truth)


def test_pseudo_label_term_trains_towards_the_cluster_not_the_prediction() -> None:
    features = torch.tensor([[1.0, 0.0], [0.98, 0.05], [0.0, 1.0], [0.05, 0.98]])
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.5], [0.0, 2.0], [0.0, 2.0]], requires_grad=True)
    shot = SHOTIM(beta=1.0, memory=8)
    shot.bind(2, 2)
    loss, logged = shot.eval()(from_tensors(features, features, logits[:, :2], logits))
    loss.backward()
    # row 1 is predicted class 1 but lies in cluster 0: its class-0 logit is pushed up
    assert logits.grad[1, 0] < 0 < logits.grad[1, 1]
    assert logged["agreement"].item() == pytest.approx(0.75)


def test_memory_is_written_in_training_only() -> None:
    shot = SHOTIM(memory=4)
    shot.bind(3, 5)
    inputs = from_tensors(torch.randn(2, 3), torch.randn(3, 3), target_logits=torch.randn(3, 5))
    shot.eval()(inputs)
    assert int(shot.memory.filled) == 0
    shot.train()(inputs)
    shot(inputs)
    assert int(shot.memory.filled) == 4
    assert "memory.features" in shot.state_dict()

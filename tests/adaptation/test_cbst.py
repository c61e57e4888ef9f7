from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.cbst import ClassBalancedSelfTraining, class_thresholds
from tests.adaptation.common import from_tensors


def test_each_predicted_class_keeps_its_own_top_portion() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.45, 0.55], [0.4, 0.6]])
    thresholds = class_thresholds(probs, portion=0.5)
    assert thresholds[0].item() == pytest.approx(0.75)  # median of 0.9, 0.8, 0.7, 0.6
    assert thresholds[1].item() == pytest.approx(0.575)  # median of 0.55, 0.6
    assert torch.isinf(class_thresholds(probs[:2], 0.5)[1])  # nobody predicts class 1


def test_an_unconfident_class_still_gets_pseudo_labels() -> None:
    """A global threshold of 0.9 would pseudo-label class 0 only; class balance labels class 1 too."""
    logits = torch.tensor([[4.0, 0.0], [3.5, 0.0], [0.0, 0.6], [0.0, 0.5]], requires_grad=True)
    cbst = ClassBalancedSelfTraining(start_portion=0.5, end_portion=0.5, memory=4)
    cbst.bind(3, 2)
    loss, logged = cbst.eval()(from_tensors(torch.randn(2, 3), torch.randn(4, 3), target_logits=logits))
    assert logged["mask_rate"].item() == pytest.approx(0.5)
    loss.backward()
    assert logits.grad[0, 0] < 0 and logits.grad[2, 1] < 0  # the top row of each class is trained
    assert logits.grad[1].abs().sum() == 0 and logits.grad[3].abs().sum() == 0


def test_portion_grows_with_progress() -> None:
    cbst = ClassBalancedSelfTraining(start_portion=0.2, end_portion=0.6)
    cbst.bind(3, 5)
    inputs = from_tensors(torch.randn(2, 3), torch.randn(4, 3), target_logits=torch.randn(4, 5), progress=0.5)
    assert cbst.eval()(inputs)[1]["portion"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="start_portion"):
        ClassBalancedSelfTraining(start_portion=0.7, end_portion=0.5)

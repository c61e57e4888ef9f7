from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.mcc import MCC, class_confusion, mcc_loss
from tests.adaptation.common import from_tensors


def reference(logits: torch.Tensor, temperature: float) -> float:
    """The paper's formula written out element by element."""
    batch, classes = logits.shape
    probs = (logits.double() / temperature).softmax(-1)
    entropies = [-sum(p * p.log() for p in row) for row in probs]
    raw = [1 + torch.exp(-h) for h in entropies]
    weights = [batch * w / sum(raw) for w in raw]
    confusion = [
        [sum(weights[i] * probs[i, j] * probs[i, k] for i in range(batch)) for k in range(classes)]
        for j in range(classes)
    ]
    normalised = [[value / sum(row) for value in row] for row in confusion]
    off_diagonal = sum(normalised[j][k] for j in range(classes) for k in range(classes) if j != k)
    return float(off_diagonal / classes)


def test_matches_the_papers_formula_on_a_tiny_batch() -> None:
    logits = torch.randn(4, 3) * 3
    assert mcc_loss(logits, 2.5).item() == pytest.approx(reference(logits, 2.5), rel=1e-5)
    assert mcc_loss(logits, 1.0).item() == pytest.approx(reference(logits, 1.0), rel=1e-5)


def test_bounds_confident_zero_uniform_maximal() -> None:
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 4, 0]), 5).float() * 200.0
    assert mcc_loss(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert mcc_loss(torch.zeros(6, 5)).item() == pytest.approx(4 / 5, rel=1e-6)


def test_rows_of_the_confusion_are_normalised() -> None:
    confusion = class_confusion(torch.randn(6, 5))
    assert torch.allclose(confusion.sum(1), torch.ones(5), atol=1e-6)


def test_more_confusion_at_higher_temperature_and_invariant_to_class_order() -> None:
    logits = torch.randn(8, 5) * 2
    assert mcc_loss(logits, 1.0) < mcc_loss(logits, 2.5) < mcc_loss(logits, 5.0)
    permuted = mcc_loss(logits[:, torch.randperm(5)], 2.5)
    assert permuted.item() == pytest.approx(mcc_loss(logits, 2.5).item(), rel=1e-5)


def test_gradient_reduces_confusion() -> None:
    logits = torch.randn(8, 5).requires_grad_()
    loss, logged = MCC(temperature=2.5)(
        from_tensors(torch.randn(4, 3), torch.randn(8, 3), target_logits=logits)
    )
    loss.backward()
    assert logits.grad.abs().sum() > 0 and logged["loss"] is loss
    with torch.no_grad():
        assert mcc_loss(logits - 1.0 * logits.grad) < loss


def test_rejects_a_non_positive_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        MCC(temperature=0.0)

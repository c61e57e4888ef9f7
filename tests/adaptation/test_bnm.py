from __future__ import annotations

import math

import pytest
import torch

from sed_uda.adaptation.bnm import BNM, bnm_loss
from tests.adaptation.common import from_tensors


def one_hot_logits(classes: list[int], num_classes: int = 5) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), num_classes).float() * 100.0


def test_one_hot_rows_give_minus_the_sum_of_root_class_counts() -> None:
    """A one-hot A has orthogonal columns, so ||A||_* = sum_k sqrt(n_k)."""
    loss = bnm_loss(one_hot_logits([0, 0, 0, 1, 2, 2]))
    assert loss.item() == pytest.approx(-(math.sqrt(3) + 1 + math.sqrt(2)) / 6, rel=1e-5)


def test_uniform_rows_have_rank_one() -> None:
    """A = 1/K everywhere: one singular value sqrt(B K) / K."""
    loss = bnm_loss(torch.zeros(8, 4))
    assert loss.item() == pytest.approx(-math.sqrt(8 * 4) / 4 / 8, rel=1e-5)


def test_prefers_diverse_confident_predictions() -> None:
    collapsed = bnm_loss(one_hot_logits([1] * 6))
    diverse = bnm_loss(one_hot_logits([0, 1, 2, 3, 4, 0]))
    uncertain = bnm_loss(torch.randn(6, 5) * 0.1)
    assert diverse < collapsed and diverse < uncertain


def test_invariant_to_class_and_row_order() -> None:
    logits = torch.randn(7, 5)
    loss = bnm_loss(logits)
    assert bnm_loss(logits[:, torch.randperm(5)]).item() == pytest.approx(loss.item(), rel=1e-5)
    assert bnm_loss(logits[torch.randperm(7)]).item() == pytest.approx(loss.item(), rel=1e-5)


def test_finite_gradient_even_with_repeated_rows() -> None:
    logits = torch.randn(1, 5).repeat(6, 1).requires_grad_()
    loss, _ = BNM()(from_tensors(torch.randn(4, 3), torch.randn(6, 3), target_logits=logits))
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_only_target_logits_matter_and_float32_under_autocast() -> None:
    target = torch.randn(6, 5)
    one = bnm_loss(target)
    other, _ = BNM()(from_tensors(torch.randn(4, 3), torch.randn(6, 3), torch.randn(4, 5), target))
    assert other.item() == pytest.approx(one.item(), rel=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert bnm_loss(target).dtype == torch.float32

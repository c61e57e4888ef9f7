from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.coral import CORAL, coral_loss
from tests.adaptation.common import from_tensors


def test_matches_the_papers_formula_with_torch_cov() -> None:
    source, target = torch.randn(9, 4), torch.randn(7, 4) * 2
    expected = (torch.cov(source.T) - torch.cov(target.T)).pow(2).sum() / (4 * 4**2)
    assert coral_loss(source, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_zero_for_equal_covariances_whatever_the_means() -> None:
    source = torch.randn(10, 3)
    assert coral_loss(source, source).item() == pytest.approx(0.0, abs=1e-7)
    assert coral_loss(source, source + 5.0).item() == pytest.approx(0.0, abs=1e-5)
    assert coral_loss(source, source[torch.randperm(10)]).item() == pytest.approx(0.0, abs=1e-6)


def test_closed_form_for_a_scaled_target() -> None:
    """C_t = s^2 C_s, so L = (1 - s^2)^2 ||C_s||_F^2 / (4 d^2): grows with the scale shift."""
    source = torch.randn(12, 3)
    norm = torch.cov(source.T).pow(2).sum().item()
    losses = [coral_loss(source, source * s).item() for s in (1.0, 1.5, 2.0, 3.0)]
    for s, loss in zip((1.0, 1.5, 2.0, 3.0), losses, strict=True):
        assert loss == pytest.approx((1 - s**2) ** 2 * norm / 36, rel=1e-4, abs=1e-7)
    assert losses == sorted(losses)


def test_gradient_reaches_both_domains_and_reduces_the_loss() -> None:
    source = torch.randn(8, 4, requires_grad=True)
    target = (torch.randn(6, 4) * 3).requires_grad_()
    loss, logged = CORAL(weight=1.0)(from_tensors(source, target))
    loss.backward()
    assert logged["loss"] is loss
    assert source.grad.abs().sum() > 0 and target.grad.abs().sum() > 0
    with torch.no_grad():
        after = coral_loss(source - 0.1 * source.grad, target - 0.1 * target.grad)
    assert after < loss


def test_float32_under_bf16_autocast() -> None:
    source, target = torch.randn(8, 4), torch.randn(6, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = coral_loss(source, target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(coral_loss(source, target).item(), rel=1e-6)

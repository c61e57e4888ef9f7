from __future__ import annotations

import math

import pytest
import torch

from sed_uda.adaptation.mmd import MMD, mmd_loss
from tests.adaptation.common import from_tensors


def test_closed_form_single_kernel_on_four_points() -> None:
    """x = {0, 1}, y = {0, 3} in 1-D; squared distances between the 4 pooled points have mean
    s = (1 + 0 + 9 + 1 + 4 + 9) * 2 / 12 = 4, and one kernel has bandwidth s."""
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [3.0]])

    def k(d2: float) -> float:
        return math.exp(-d2 / 4.0)

    within_x, within_y = k(1), k(9)
    cross = (k(0) + k(9) + k(1) + k(4)) / 4
    unbiased = mmd_loss(x, y, kernel_num=1, unbiased=True)
    assert unbiased.item() == pytest.approx(within_x + within_y - 2 * cross, rel=1e-5)
    biased = mmd_loss(x, y, kernel_num=1, unbiased=False)
    assert biased.item() == pytest.approx((2 + 2 * k(1)) / 4 + (2 + 2 * k(9)) / 4 - 2 * cross, rel=1e-5)


def test_bandwidths_multiply_around_the_mean_distance() -> None:
    """Five kernels at s/4 .. 4s: the kernel sum of two points at squared distance s (the mean)."""
    x, y = torch.tensor([[0.0]]), torch.tensor([[2.0]])
    cross = sum(math.exp(-1 / 2**u) for u in (-2, -1, 0, 1, 2))
    biased = mmd_loss(x, y, kernel_mul=2.0, kernel_num=5, unbiased=False)
    assert biased.item() == pytest.approx(5 + 5 - 2 * cross, rel=1e-5)


def test_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    source = torch.randn(120, 4)
    losses = [mmd_loss(source, torch.randn(90, 4) + shift).item() for shift in (0.0, 0.5, 1.0, 2.0)]
    assert abs(losses[0]) < 0.02
    assert losses == sorted(losses) and losses[1] > 5 * abs(losses[0])


def test_biased_estimate_is_zero_for_identical_sets_and_non_negative() -> None:
    x = torch.randn(10, 3)
    assert mmd_loss(x, x, unbiased=False).item() == pytest.approx(0.0, abs=1e-6)
    assert mmd_loss(x, torch.randn(7, 3), unbiased=False) >= 0


def test_symmetric_and_scale_invariant() -> None:
    """Bandwidths follow the data, so scaling both domains together changes nothing."""
    x, y = torch.randn(9, 3), torch.randn(5, 3) + 0.5
    loss = mmd_loss(x, y).item()
    assert mmd_loss(y, x).item() == pytest.approx(loss, rel=1e-5)
    assert mmd_loss(10 * x, 10 * y).item() == pytest.approx(loss, rel=1e-4)


def test_gradient_pulls_the_domains_together() -> None:
    source = torch.randn(8, 4, requires_grad=True)
    target = (torch.randn(6, 4) + 1.5).requires_grad_()
    loss, logged = MMD()(from_tensors(source, target))
    loss.backward()
    assert torch.isfinite(source.grad).all() and source.grad.abs().sum() > 0 and target.grad.abs().sum() > 0
    with torch.no_grad():
        assert mmd_loss(source - 0.5 * source.grad, target - 0.5 * target.grad) < loss


def test_unbiased_needs_two_rows_per_domain() -> None:
    with pytest.raises(ValueError, match="2 rows"):
        mmd_loss(torch.randn(1, 3), torch.randn(4, 3))
    assert torch.isfinite(mmd_loss(torch.randn(1, 3), torch.randn(4, 3), unbiased=False))

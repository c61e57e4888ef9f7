"""Gradient reversal: identity forward, exactly -coeff * grad backward."""

from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.grl import GradientReversalLayer, GradientReverseFunction


@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_forward_is_identity_and_backward_is_negated_scaled_grad(coeff: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    y = GradientReverseFunction.apply(x, coeff)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -coeff * upstream)


@pytest.mark.parametrize("coeff", [0.5, 1.0, 4.0])
def test_jacobian_is_minus_coeff_identity(coeff: float) -> None:
    x = torch.randn(5, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(GradientReversalLayer(coeff), x)
    assert torch.equal(jacobian, -coeff * torch.eye(5, dtype=torch.float64))


def test_settable_coeff_reverses_gradient_through_a_loss() -> None:
    layer = GradientReversalLayer()
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    for coeff in (0.0, 0.7, 1.9):
        layer.coeff = coeff
        (grad,) = torch.autograd.grad(layer(x).square().sum(), x)
        assert torch.allclose(grad, -coeff * 2 * x, rtol=0, atol=1e-15)

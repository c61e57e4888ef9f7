"""DANN, the reference adversarial method, and the helpers CDAN reuses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sed_uda.adaptation.dann import DANN, domain_accuracy, domain_adversarial_loss, grl_lambda
from tests.adaptation.common import from_tensors


def test_schedule_starts_at_zero_and_approaches_lambda_max() -> None:
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(0.5, 2.0, 10.0) == pytest.approx(2.0 * (2 / (1 + math.exp(-5)) - 1))
    assert grl_lambda(1.0, 0.5) == pytest.approx(0.5, rel=1e-4)
    values = [grl_lambda(p / 10) for p in range(11)]
    assert values == sorted(values)


def test_domain_loss_weights_both_domains_equally_and_normalises_weights_per_domain() -> None:
    logits = torch.tensor([-2.0, 0.5, 1.0, 3.0, -1.0])
    bce = F.binary_cross_entropy_with_logits
    expected = 0.5 * (bce(logits[:2], torch.zeros(2)) + bce(logits[2:], torch.ones(3)))
    assert domain_adversarial_loss(logits, 2).item() == pytest.approx(expected.item(), rel=1e-6)
    # scaling the weights of one domain changes nothing; uneven weights within a domain do
    same = domain_adversarial_loss(logits, 2, torch.tensor([3.0, 3.0, 0.5, 0.5, 0.5]))
    assert same.item() == pytest.approx(expected.item(), rel=1e-6)
    weights = torch.tensor([1.0, 0.0, 1.0, 1.0, 2.0])
    per_row = bce(logits, torch.tensor([0.0, 0, 1, 1, 1]), reduction="none")
    manual = 0.5 * (per_row[0] + (per_row[2] + per_row[3] + 2 * per_row[4]) / 4)
    assert domain_adversarial_loss(logits, 2, weights).item() == pytest.approx(manual.item(), rel=1e-6)
    assert domain_accuracy(logits, 2).item() == pytest.approx(3 / 5)


def test_discriminator_descends_and_embeddings_ascend_the_domain_loss() -> None:
    method = DANN(dropout=0.0)
    method.bind(4, 5)
    source = torch.randn(6, 4, requires_grad=True)
    target = (torch.randn(5, 4) + 1.0).requires_grad_()
    loss, logged = method(from_tensors(source, target, progress=1.0))
    assert logged["lambda"] == pytest.approx(grl_lambda(1.0))
    loss.backward()
    with torch.no_grad():
        moved = method(from_tensors(source - 0.5 * source.grad, target - 0.5 * target.grad))[0]
        assert moved > loss
        for parameter in method.discriminator.parameters():
            parameter -= 0.05 * parameter.grad
        assert method(from_tensors(source, target))[0] < loss

from __future__ import annotations

import math

import pytest
import torch

from sed_uda.adaptation.cdan import CDAN, MultilinearMap, RandomizedMultilinearMap
from sed_uda.adaptation.dann import domain_adversarial_loss
from tests.adaptation.common import from_tensors


def cdan(**kwargs: object) -> CDAN:
    method = CDAN(dropout=0.0, **kwargs)
    method.bind(4, 3)
    return method


def random_inputs(progress: float = 1.0, scale: float = 3.0):
    source = torch.randn(6, 4, requires_grad=True)
    target = (torch.randn(5, 4) + 1).requires_grad_()
    source_logits = (torch.randn(6, 3) * scale).requires_grad_()
    target_logits = (torch.randn(5, 3) * scale).requires_grad_()
    return from_tensors(source, target, source_logits, target_logits, progress)


def test_multilinear_map_is_the_flattened_outer_product() -> None:
    f, g = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.25, 0.75]])
    assert MultilinearMap()(f, g).tolist() == [[0.25, 0.75, 0.5, 1.5]]


def test_randomized_map_above_max_dim_keeps_inner_products_and_is_a_buffer() -> None:
    method = CDAN(max_dim=8, randomized_dim=32)
    method.bind(4, 3)
    assert isinstance(method.map, RandomizedMultilinearMap)
    assert method.discriminator.net[0].in_features == 32
    assert {"map.features_matrix", "map.predictions_matrix"} <= set(method.state_dict())
    assert not any(name.startswith("map.") for name, _ in method.named_parameters())
    exact = CDAN()
    exact.bind(4, 3)
    assert isinstance(exact.map, MultilinearMap) and exact.discriminator.net[0].in_features == 12
    # E[<T(f1, g1), T(f2, g2)>] = <f1, f2> <g1, g2>: check on average over many draws
    f, g = torch.randn(2, 4), torch.randn(2, 3).softmax(-1)
    estimates = []
    for _ in range(200):
        mapped = RandomizedMultilinearMap(4, 3, 64)(f, g)
        estimates.append((mapped[0] * mapped[1]).sum())
    expected = (f[0] @ f[1]) * (g[0] @ g[1])
    assert torch.stack(estimates).mean().item() == pytest.approx(
        expected.item(), abs=0.1 * f.norm().item() ** 2
    )


def test_without_entropy_it_is_the_unweighted_domain_loss_of_the_conditioned_features() -> None:
    method = cdan(entropy=False)
    inputs = random_inputs()
    loss, logged = method(inputs)
    f = torch.cat([inputs.source_embedding, inputs.target_embedding])
    g = torch.cat([inputs.source_logits, inputs.target_logits]).softmax(-1)
    expected = domain_adversarial_loss(method.discriminator((f[:, :, None] * g[:, None, :]).flatten(1)), 6)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0.0 <= logged["domain_acc"].item() <= 1.0


def test_entropy_weights_favour_confident_rows_and_vanish_for_equal_certainty() -> None:
    inputs = random_inputs()
    plain, weighted = cdan(entropy=False), cdan(entropy=True)
    weighted.load_state_dict(plain.state_dict())
    assert weighted(inputs)[0].item() != pytest.approx(plain(inputs)[0].item(), rel=1e-4)
    # equally certain rows (one permuted prediction for all): weights normalised per domain are equal
    base = torch.tensor([3.0, 0.0, -1.0])
    same_certainty = torch.stack([base[torch.randperm(3)] for _ in range(11)])
    inputs.source_logits, inputs.target_logits = same_certainty[:6], same_certainty[6:]
    assert weighted(inputs)[0].item() == pytest.approx(plain(inputs)[0].item(), rel=1e-5)


def test_gradient_reversal_follows_dann_schedule_and_predictions_are_detached() -> None:
    method = cdan()
    at_start = random_inputs(progress=0.0)
    method(at_start)[0].backward()
    assert at_start.source_embedding.grad.abs().sum() == 0  # λ(0) = 0
    inputs = random_inputs(progress=1.0)
    loss, logged = method(inputs)
    assert logged["lambda"] == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    loss.backward()
    assert inputs.source_embedding.grad.abs().sum() > 0 and inputs.target_embedding.grad.abs().sum() > 0
    assert inputs.source_logits.grad is None and inputs.target_logits.grad is None
    # the discriminator descends the loss, the embeddings ascend it (reversed gradient)
    with torch.no_grad():
        step = 0.5
        moved = from_tensors(
            inputs.source_embedding - step * inputs.source_embedding.grad,
            inputs.target_embedding - step * inputs.target_embedding.grad,
            inputs.source_logits,
            inputs.target_logits,
        )
        assert method(moved)[0] > loss
        for parameter in method.discriminator.parameters():
            parameter -= 0.05 * parameter.grad
        assert method(inputs)[0] < loss


def test_needs_bind() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        CDAN()(random_inputs())

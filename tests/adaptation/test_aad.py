from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.aad import AaD, attract_disperse, nearest_neighbours
from tests.adaptation.common import from_tensors


def test_attraction_and_dispersion_closed_form() -> None:
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    neighbours = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [1.0, 0.0]]])
    loss, attraction, dispersion = attract_disperse(probs, neighbours, alpha=0.5)
    assert attraction.item() == pytest.approx((1.0 + 0.0 + 0.5 + 0.5) / 2)
    assert dispersion.item() == pytest.approx((0.5 + 0.5) / 2)
    assert loss.item() == pytest.approx(-1.0 + 0.25)


def test_neighbours_are_the_most_similar_rows_never_the_row_itself() -> None:
    bank = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]]), dim=1
    )
    exclude = torch.zeros(1, 4, dtype=torch.bool)
    exclude[0, 0] = True
    assert nearest_neighbours(bank[:1], bank, 2, exclude).tolist() == [[1, 3]]


def test_a_row_is_pulled_towards_the_class_of_its_stored_neighbours() -> None:
    aad = AaD(k=2, alpha=0.0, memory=8)
    aad.bind(2, 3)
    stored = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])
    aad.train()(
        from_tensors(stored, stored, target_logits=torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 0, 5.0]]))
    )
    logits = torch.zeros(1, 3, requires_grad=True)
    loss, _ = aad.eval()(from_tensors(stored[:1], torch.tensor([[1.0, 0.05]]), target_logits=logits))
    loss.backward()
    assert logits.grad[0, 0] < 0 and logits.grad[0, 2] > 0  # class 0 of its two nearest rows gains


def test_dispersion_decays_with_progress() -> None:
    aad = AaD(alpha=1.0, gamma=0.75)
    aad.bind(3, 5)
    inputs = from_tensors(torch.randn(2, 3), torch.randn(4, 3), target_logits=torch.randn(4, 5))
    early = aad.eval()(inputs)[1]["alpha"]
    inputs.progress = 1.0
    assert aad(inputs)[1]["alpha"] == pytest.approx(11.0**-0.75) and early == pytest.approx(6.0**-0.75)

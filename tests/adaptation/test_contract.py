"""What every method (as configured in configs/adaptation) owes `UDAModule`.

A method cannot see target labels: `AdaptationInputs` carries none, so "the loss is unchanged when the
target's unknown classes are permuted" holds by construction and is not tested here. What can fail,
and is tested: every loss is a function of the target *set* and the source *set* (it pairs no source
row with a target row by position), and it stays float32 inside a bf16 autocast step.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss
from tests.adaptation.common import DIM, TinyModel, step
from tests.adaptation.test_in_model import CONFIGS, load

METHODS = [(path.stem, index) for path in CONFIGS for index, _ in enumerate(load(path))]


def built(stem: str, index: int) -> AdaptationLoss:
    method = load(next(path for path in CONFIGS if path.stem == stem))[index]
    method.bind(DIM, 5)
    return method.eval()  # no dropout, no random strong view: the loss is a function of its inputs


def permute(inputs: AdaptationInputs, side: str, order: torch.Tensor) -> AdaptationInputs:
    """The inputs with the rows of one side ("source" or "target") reordered, every per-row field alike."""
    rows = {f.name: getattr(inputs, f.name) for f in fields(inputs) if f.name.startswith(side)}
    return replace(inputs, **{name: value[order] for name, value in rows.items()})


@pytest.mark.parametrize(("stem", "index"), METHODS, ids=[f"{s}-{i}" for s, i in METHODS])
def test_loss_depends_on_the_sets_of_rows_not_their_order(stem: str, index: int) -> None:
    method = built(stem, index)
    model = TinyModel(scale=10.0)
    with torch.no_grad():
        inputs = step(model, n_source=8, n_target=6, shift=1.0, progress=0.7)
        loss = method(inputs)[0].item()
        assert method(permute(inputs, "target", torch.randperm(6)))[0].item() == pytest.approx(
            loss, rel=1e-4, abs=1e-6
        )
        assert method(permute(inputs, "source", torch.randperm(8)))[0].item() == pytest.approx(
            loss, rel=1e-4, abs=1e-6
        )


@pytest.mark.parametrize(("stem", "index"), METHODS, ids=[f"{s}-{i}" for s, i in METHODS])
def test_float32_loss_inside_bf16_autocast(stem: str, index: int) -> None:
    method = built(stem, index)
    model = TinyModel(scale=10.0)
    inputs = step(model, shift=1.0)
    reference = method(inputs)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = method(inputs)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # only the discriminator (DANN, CDAN) and the re-classified strong view run in bf16
    assert loss.item() == pytest.approx(reference.item(), rel=0.05, abs=1e-3)
    loss.backward()
    assert model.encoder.weight.grad is not None

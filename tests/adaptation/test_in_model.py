"""Each configured method inside `UDAModule.compute_losses` (a tiny 1D-CNN, random frames)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from jsonargparse import ArgumentParser

from sed_uda.adaptation.self_training import FixMatch
from sed_uda.models.components.cnn1d import CNN1dEncoder
from sed_uda.models.uda import UDAModule
from tests.adaptation.test_configs import CONFIGS, load


def frames(rows: int, shift: float = 0.0) -> dict[str, torch.Tensor]:
    lengths = torch.randint(12, 25, (rows,))
    x = (torch.randn(rows, 8, 24) + shift) * (torch.arange(24) < lengths[:, None]).float()[:, None, :]
    return {"x": x, "lengths": lengths}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_config_trains_the_encoder_inside_the_module(path: Path) -> None:
    losses = load(path)
    for loss in losses:
        if isinstance(loss, FixMatch):
            loss.threshold = 0.0  # an untrained model is never 90% sure: pseudo-label every row
    model = UDAModule(encoder=CNN1dEncoder(8, width=8, depth=2, embedding_dim=16), adaptations=losses)
    labelled = {**frames(6), "y": torch.randint(0, 5, (6,))}
    out = model.compute_losses(labelled, frames(5, shift=1.0), progress=0.5)
    assert torch.isfinite(out["loss"])
    for loss in losses:
        assert f"{loss.name}_loss" in out
    adaptation = sum(loss.weight * out[f"{loss.name}_loss"] for loss in losses)
    assert out["loss"].item() == pytest.approx((out["class_loss"] + adaptation).item(), rel=1e-5)
    adaptation.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_config_parses_against_the_modules_signature(path: Path) -> None:
    """As LightningCLI reads `model:`: the YAML's entries fit `UDAModule(adaptations=...)`."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(UDAModule, "model", fail_untyped=False)
    config = parser.parse_path(str(path))
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    model = instantiate(config).model
    model = model if isinstance(model, UDAModule) else UDAModule(**model)  # older jsonargparse: init args
    assert [type(a) for a in model.adaptations] == [type(a) for a in load(path)]

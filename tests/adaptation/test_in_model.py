"""Each configs/adaptation YAML inside `UDAModule` (a tiny 1D-CNN, random frames), and through the
real `sed-uda fit` parser, which also links the model's adaptations to the data it is served."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from sed_uda.adaptation.base import AdaptationLoss
from sed_uda.adaptation.self_training import FixMatch
from sed_uda.models.components.cnn1d import CNN1dEncoder
from sed_uda.models.uda import UDAModule
from sed_uda.training_cli import training_cli
from tests.conftest import FAST, REPO

CONFIGS = sorted((REPO / "configs" / "adaptation").glob("*.yaml"))
EXPERIMENT = REPO / "configs" / "experiment" / "en2zh.yaml"


def model_part(path: Path) -> dict:
    """The `model:` part of a partial config (adaptation files may also set `data:` and `selection:`)."""
    return yaml.safe_load(path.read_text()).get("model") or {}


def _instantiate(parser: ArgumentParser, config):  # noqa: ANN001, ANN202
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
    return instantiate(config)


def load(path: Path) -> list[AdaptationLoss]:
    """The losses of one config's `model.adaptations`, parsed with the type UDAModule declares."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model.adaptations", type=Sequence[AdaptationLoss], default=())
    config = parser.parse_object({"model": {"adaptations": model_part(path).get("adaptations", [])}})
    return list(_instantiate(parser, config).model.adaptations)


def frames(rows: int, shift: float = 0.0) -> dict[str, torch.Tensor]:
    lengths = torch.randint(12, 25, (rows,))
    x = (torch.randn(rows, 8, 24) + shift) * (torch.arange(24) < lengths[:, None]).float()[:, None, :]
    return {"x": x, "lengths": lengths, "speaker": torch.randint(0, 20, (rows,))}


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
    if not losses:  # source-only / target-supervised: the class loss alone, no adaptation values
        assert set(out) == {"loss", "class_loss", "labelled_acc"} and torch.equal(
            out["loss"], out["class_loss"]
        )
        return
    for loss in losses:
        assert f"{loss.name}_loss" in out
    adaptation = sum(loss.weight * out[f"{loss.name}_loss"] for loss in losses)
    assert out["loss"].item() == pytest.approx((out["class_loss"] + adaptation).item(), rel=1e-5)
    adaptation.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_model_part_parses_against_the_modules_signature(path: Path) -> None:
    """The YAML's `model:` entries fit `UDAModule`'s own signature."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(UDAModule, "model", fail_untyped=False)
    config = parser.parse_object({"model": model_part(path)})
    model = _instantiate(parser, config).model
    model = model if isinstance(model, UDAModule) else UDAModule(**model)  # older jsonargparse: init args
    assert [type(a) for a in model.adaptations] == [type(a) for a in load(path)]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_config_through_the_fit_parser_links_model_and_data(
    path: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    """Composed as a user types it; nothing is trained. Adaptation losses turn the unlabelled target
    stream on, and `data.labelled` decides the model's labelled domain."""
    cli = training_cli(
        [
            f"--config={EXPERIMENT}",
            f"--config={path}",
            f"--data.cache_dir={tiny_cache}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.logger=false",
            *FAST,
        ],
        run=False,
    )
    model, data = cli.model, cli.datamodule
    expected = load(path)
    assert [type(a) for a in model.adaptations] == [type(a) for a in expected]
    assert [a.weight for a in model.adaptations] == [a.weight for a in expected]
    assert data.unlabelled_target == model.needs_unlabelled == bool(expected)
    assert model.hparams.labelled_domain == data.labelled
    assert data.labelled == data_part(path).get("labelled", "source")
    assert model.hparams.direction == data.direction == "en2zh"
    x = torch.zeros(2, data.num_channels, 16)
    assert model(x, torch.tensor([16, 9])).shape == (2, 5)  # the encoder got the data's channels


def data_part(path: Path) -> dict:
    """The `data:` part of a partial config."""
    return yaml.safe_load(path.read_text()).get("data") or {}

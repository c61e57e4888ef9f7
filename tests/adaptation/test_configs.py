"""Every configs/adaptation/*.yaml parses, as LightningCLI would, into working adaptation losses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from sed_uda.adaptation.base import AdaptationLoss
from sed_uda.adaptation.cdan import CDAN
from sed_uda.adaptation.mcc import MCC
from sed_uda.adaptation.self_training import FixMatch
from tests.adaptation.common import DIM, TinyModel, step

ALL_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "adaptation").glob("*.yaml"))
CONFIGS = [p for p in ALL_CONFIGS if yaml.safe_load(p.read_text())["model"]["adaptations"]]
"""The configs that adapt (the source-only and target-supervised bounds have no adaptation loss)."""
EXPECTED = {
    "dann",
    "cdan_e",
    "mcc",
    "mmd",
    "coral",
    "bnm",
    "fixmatch",
    "cdan_e_mcc",
    "shot_im",
    "aad",
    "cbst",
    "mixup",
    "speaker_adv",
    "mcc_speaker_adv",
    "aad_speaker_adv",
    "shot_im_speaker_adv",
}


def load(path: Path) -> list[AdaptationLoss]:
    """The losses of one config, parsed with the type `UDAModule.adaptations` declares."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model.adaptations", type=Sequence[AdaptationLoss], default=())
    config = parser.parse_object(
        {"model": {"adaptations": yaml.safe_load(path.read_text())["model"]["adaptations"]}}
    )
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
    return list(instantiate(config).model.adaptations)


def test_every_method_has_a_config() -> None:
    assert {path.stem for path in CONFIGS} >= EXPECTED
    assert {path.stem for path in ALL_CONFIGS} - {path.stem for path in CONFIGS} == {
        "source_only",
        "target_supervised",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_config_builds_losses_that_train_the_encoder(path: Path) -> None:
    losses = load(path)
    assert losses and all(isinstance(loss, AdaptationLoss) for loss in losses)
    model = TinyModel(scale=10.0)  # confident logits, so FixMatch has pseudo-labels
    for loss in losses:
        loss.bind(DIM, 5)
        model.zero_grad()
        value, logged = loss(step(model, progress=0.5))
        assert value.dim() == 0 and torch.isfinite(value)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logged.values())
        (loss.weight * value).backward()
        assert model.encoder.weight.grad is not None and model.encoder.weight.grad.abs().sum() > 0, path.stem


def test_cdan_e_and_fixmatch_options_reach_the_instances() -> None:
    (cdan,) = load(CONFIGS[[p.stem for p in CONFIGS].index("cdan_e")])
    assert isinstance(cdan, CDAN) and cdan.entropy
    (fixmatch,) = load(CONFIGS[[p.stem for p in CONFIGS].index("fixmatch")])
    assert isinstance(fixmatch, FixMatch) and fixmatch.threshold == 0.9 and fixmatch.strong.time_masks == 4
    combined = load(CONFIGS[[p.stem for p in CONFIGS].index("cdan_e_mcc")])
    assert [type(loss) for loss in combined] == [CDAN, MCC]

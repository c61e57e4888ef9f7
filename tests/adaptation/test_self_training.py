from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sed_uda.adaptation.self_training import FixMatch, strong_augment
from sed_uda.models.components.augment import FeatureAugment
from tests.adaptation.common import TinyModel, step

IDENTITY = FeatureAugment(0, 0, 0, 0, 0.0, 0)


def test_identity_strong_view_closed_form_on_confident_rows_only() -> None:
    """With no augmentation the strong view is the weak one: L = sum_confident CE(z_i, argmax z_i) / B."""
    model = TinyModel(scale=4.0)
    inputs = step(model, n_target=10)
    logits = inputs.target_logits.detach()
    confidence, labels = logits.softmax(-1).max(-1)
    threshold = confidence.median().item()
    loss, logged = FixMatch(threshold=threshold, strong=IDENTITY)(inputs)
    mask = confidence >= threshold
    assert 0 < mask.sum() < 10
    expected = F.cross_entropy(logits[mask], labels[mask], reduction="sum") / 10
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logged["mask_rate"].item() == pytest.approx(mask.float().mean().item())
    assert logged["confidence"].item() == pytest.approx(confidence.mean().item(), rel=1e-6)


def test_no_confident_row_no_loss() -> None:
    inputs = step(TinyModel(scale=0.01))
    loss, logged = FixMatch(threshold=0.9)(inputs)
    assert loss.item() == 0.0 and logged["mask_rate"].item() == 0.0


def test_gradient_through_the_strong_view_not_the_pseudo_labels() -> None:
    model = TinyModel(scale=20.0)
    inputs = step(model, n_target=8)
    inputs.target_logits.retain_grad()
    loss, logged = FixMatch(threshold=0.5)(inputs)
    assert logged["mask_rate"] > 0
    loss.backward()
    assert model.encoder.weight.grad.abs().sum() > 0
    assert inputs.target_logits.grad is None


def test_strong_view_is_augmented_in_training_only() -> None:
    seen: list[torch.Tensor] = []
    model = TinyModel()
    inputs = step(model)

    def classify(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return model(x, lengths)

    inputs.classify = classify
    method = FixMatch(threshold=0.0)
    method(inputs)
    assert not torch.equal(seen[-1], inputs.target_x)
    method.eval()
    method(inputs)
    assert torch.equal(seen[-1], inputs.target_x)


def test_default_strong_view_is_stronger_than_the_default_weak_one() -> None:
    strong, weak = strong_augment(), FeatureAugment()
    assert isinstance(FixMatch().strong, FeatureAugment)
    for name in (
        "time_masks",
        "time_mask_frames",
        "channel_masks",
        "channel_mask_width",
        "gain",
        "shift_frames",
    ):
        assert getattr(strong, name) > getattr(weak, name)
    assert FixMatch(strong=IDENTITY).strong is IDENTITY


def test_rejects_a_threshold_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="threshold"):
        FixMatch(threshold=1.5)

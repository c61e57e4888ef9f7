from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.mixup import DomainMixup, mix_frames
from tests.adaptation.common import CLASSES, TinyModel, step


def test_mixes_over_the_frames_both_rows_have() -> None:
    source, target = torch.ones(2, 1, 4), torch.full((2, 1, 6), 3.0)
    mixed, lengths = mix_frames(
        source, torch.tensor([4, 2]), target, torch.tensor([3, 6]), torch.tensor([0.25, 1.0])
    )
    assert lengths.tolist() == [3, 2]
    assert mixed[0, 0].tolist() == [2.5, 2.5, 2.5, 0.0] and mixed[1, 0].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_loss_is_the_soft_cross_entropy_of_the_mixed_rows() -> None:
    model = TinyModel(scale=3.0)
    inputs = step(model, n_source=5, n_target=4, shift=1.0)
    mixup = DomainMixup().eval()
    loss, logged = mixup(inputs)
    partner, lam = mixup.partners(inputs)
    assert logged["lambda"].item() == pytest.approx(0.5) and lam.tolist() == [0.5] * 4
    x, lengths = mix_frames(
        inputs.source_x[partner], inputs.source_lengths[partner], inputs.target_x, inputs.target_lengths, lam
    )
    soft = 0.5 * torch.nn.functional.one_hot(
        inputs.source_labels[partner], CLASSES
    ) + 0.5 * inputs.target_logits.softmax(-1)
    expected = -(soft * model(x, lengths).log_softmax(-1)).sum(-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_training_draws_partners_and_weights() -> None:
    torch.manual_seed(0)
    inputs = step(TinyModel(), n_source=8, n_target=64)
    partner, lam = DomainMixup(alpha=0.2).train().partners(inputs)
    assert (
        len(partner.unique()) > 1 and ((lam < 0.1) | (lam > 0.9)).float().mean() > 0.5
    )  # Beta(0.2, 0.2) is U-shaped

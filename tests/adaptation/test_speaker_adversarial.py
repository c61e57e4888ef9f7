"""Speaker-adversarial training: the speaker classifier learns the speakers, the encoder is pushed to
hide them, and data without speakers is refused with the fix."""

from __future__ import annotations

import pytest
import torch

from sed_uda.adaptation.dann import grl_lambda
from sed_uda.adaptation.speaker_adversarial import SpeakerAdversarial
from tests.adaptation.common import from_tensors


def _inputs(source: torch.Tensor, target: torch.Tensor, progress: float = 1.0):  # noqa: ANN202
    speakers = torch.arange(len(source) + len(target)) % 4
    return from_tensors(
        source,
        target,
        progress=progress,
        source_speakers=speakers[: len(source)],
        target_speakers=speakers[len(source) :],
    )


def test_classifier_descends_and_embeddings_ascend_the_speaker_loss() -> None:
    torch.manual_seed(0)
    method = SpeakerAdversarial(speakers=4)
    method.bind(4, 5)
    source = torch.randn(8, 4, requires_grad=True)
    target = torch.randn(6, 4, requires_grad=True)
    loss, logged = method(_inputs(source, target))
    assert logged["lambda"] == pytest.approx(grl_lambda(1.0))
    loss.backward()
    with torch.no_grad():
        moved = method(_inputs(source - 0.5 * source.grad, target - 0.5 * target.grad))[0]
        assert moved > loss  # the encoder's step hides the speaker
        for parameter in method.classifier.parameters():
            parameter -= 0.1 * parameter.grad
        assert method(_inputs(source, target))[0] < loss  # the classifier's step finds it


def test_no_reversal_at_the_start_of_training() -> None:
    method = SpeakerAdversarial(speakers=4)
    method.bind(4, 5)
    source = torch.randn(8, 4, requires_grad=True)
    target = torch.randn(6, 4, requires_grad=True)
    method(_inputs(source, target, progress=0.0))[0].backward()
    assert source.grad.abs().sum() == 0 and target.grad.abs().sum() == 0


def test_refuses_batches_without_speakers_or_with_more_speakers_than_outputs() -> None:
    method = SpeakerAdversarial(speakers=3)
    method.bind(4, 5)
    with pytest.raises(ValueError, match="no 'speaker'"):
        method(from_tensors(torch.randn(4, 4), torch.randn(4, 4)))
    with pytest.raises(ValueError, match="at least 4 speakers .* in the adaptation config"):
        method(_inputs(torch.randn(4, 4), torch.randn(4, 4)))

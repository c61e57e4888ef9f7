"""Speaker-adversarial training (Li et al., ICASSP 2020, "Speaker-invariant affective representation
learning via adversarial training"), across both languages' speakers, with Ganin's gradient reversal.

A speaker classifier S learns which of the two languages' train speakers an embedding f comes from
(source rows and unlabelled target rows alike: speaker identity is metadata, not an emotion label); a
gradient-reversal layer between f and S makes the same step push the encoder to hide the speaker:

    L = CE(S(R_λ(f)), speaker),   λ(p) annealed over training progress p as in DANN.

Why: without per-speaker standardisation (global statistics, one recording classified alone), the
embeddings of a language cluster by speaker, and the target-side losses follow those clusters. Every
speaker of one language is a class apart from every speaker of the other, so hiding the speaker also
hides the language. Prediction needs no speaker: S is used only in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput
from sed_uda.adaptation.dann import grl_lambda
from sed_uda.adaptation.grl import GradientReversalLayer
from sed_uda.errors import BadArgument


class SpeakerAdversarial(AdaptationLoss):
    """Speaker classification through a gradient-reversal layer, on both domains' embeddings.

    Args:
        weight: trade-off of the speaker loss.
        speakers: outputs of the speaker classifier: at least the speakers of both languages
            (ESD: 10 + 10); a batch with a larger speaker index is refused with this fix.
        lambda_max: final GRL coefficient.
        gamma: steepness of the GRL schedule.
        hidden: hidden units of the speaker classifier's one hidden layer.
    """

    name = "speaker_adv"

    def __init__(
        self,
        weight: float = 1.0,
        speakers: int = 20,
        lambda_max: float = 1.0,
        gamma: float = 10.0,
        hidden: int = 128,
    ) -> None:
        super().__init__(weight)
        if speakers < 2:
            raise BadArgument(f"SpeakerAdversarial: speakers must be >= 2, got {speakers}")
        self.speakers, self.lambda_max, self.gamma, self.hidden = speakers, lambda_max, gamma, hidden
        self.grl = GradientReversalLayer()
        self.classifier: nn.Module | None = None

    def bind(self, embedding_dim: int, num_classes: int) -> None:
        self.classifier = nn.Sequential(
            nn.Linear(embedding_dim, self.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden, self.speakers),
        )

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        if inputs.source_speakers is None or inputs.target_speakers is None:
            raise BadArgument(
                "SpeakerAdversarial needs the speaker of every training row; the training batches have "
                "no 'speaker' (CrossLingualDataModule serves it)"
            )
        speaker = torch.cat([inputs.source_speakers, inputs.target_speakers])
        if int(speaker.max()) >= self.speakers:
            raise BadArgument(
                f"SpeakerAdversarial: the data has at least {int(speaker.max()) + 1} speakers but the "
                f"classifier has {self.speakers} outputs; set the SpeakerAdversarial entry's init_args "
                "speakers in the adaptation config to the number of speakers of both languages"
            )
        self.grl.coeff = grl_lambda(inputs.progress, self.lambda_max, self.gamma)
        embedding = torch.cat([inputs.source_embedding, inputs.target_embedding]).float()
        logits = self.classifier(self.grl(embedding)).float()
        loss = F.cross_entropy(logits, speaker)
        accuracy = (logits.argmax(-1) == speaker).float().mean()
        return loss, {"loss": loss, "acc": accuracy, "lambda": self.grl.coeff}

"""FixMatch-style self-training on the unlabelled target (Sohn et al., NeurIPS 2020, "FixMatch:
simplifying semi-supervised learning with consistency and confidence").

The weak view is the training batch itself (the model's own `augment`, if configured, has already
been applied to it); its target predictions q = softmax(target logits), detached, give pseudo-labels
ŷ = argmax q. A strong view A(u) of the same crops, made here by a stronger `FeatureAugment` (more
and wider time/channel masks, larger gain and shift), is classified again, and only confident rows
are trained towards their pseudo-label:

    L = 1/B sum_i 1[max q_i >= τ] CE(model(A(u_i)), ŷ_i)      (B target rows, threshold τ).

The normalisation by all B rows (not only the confident ones) follows the paper. No EMA teacher:
the pseudo-labels come from the model itself, as in FixMatch. The strong view is a second forward
pass of the target rows alone (`inputs.classify`), so batch-norm layers see it apart from the joint
source + target batch, and the step costs one more target forward and backward.
"""

from __future__ import annotations

import torch.nn.functional as F

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math
from sed_uda.models.components.augment import FeatureAugment


def strong_augment() -> FeatureAugment:
    """The default strong view: twice the masks of the default weak `FeatureAugment`, each up to
    twice as wide, 2.5x the gain and twice the time shift."""
    return FeatureAugment(
        time_masks=4, time_mask_frames=24, channel_masks=4, channel_mask_width=24, gain=0.5, shift_frames=32
    )


class FixMatch(AdaptationLoss):
    """Confidence-thresholded pseudo-labels of the weak view, learnt on a strong view.

    Args:
        weight: trade-off of the self-training loss (λ_u = 1 in the paper).
        threshold: confidence τ a weak-view prediction needs to become a pseudo-label (0.95 in the
            paper for images; 0.9 here, for 5 classes and noisier speech features).
        strong: the strong augmentation (None: `strong_augment()`).
    """

    name = "fixmatch"
    reads_frames = True

    def __init__(
        self, weight: float = 1.0, threshold: float = 0.9, strong: FeatureAugment | None = None
    ) -> None:
        super().__init__(weight)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"FixMatch: threshold must be in [0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.strong = strong if strong is not None else strong_augment()

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        with float32_math(inputs.target_logits):
            confidence, pseudo_labels = inputs.target_logits.detach().float().softmax(-1).max(-1)
        mask = (confidence >= self.threshold).float()
        strong_x = self.strong(inputs.target_x, inputs.target_lengths)
        strong_logits = inputs.classify(strong_x, inputs.target_lengths).float()
        per_row = F.cross_entropy(strong_logits, pseudo_labels, reduction="none")
        loss = (per_row * mask).sum() / len(mask)
        return loss, {"loss": loss, "mask_rate": mask.mean(), "confidence": confidence.mean()}

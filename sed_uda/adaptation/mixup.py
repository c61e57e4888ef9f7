"""Inter-domain mixup (Yan, Hu, Li et al., 2020, "Improve unsupervised domain adaptation with mixup
training", arXiv:2001.00677; mixup: Zhang et al., ICLR 2018).

Each target row is mixed with a source row, inputs and labels alike; the target's label is the
model's own (detached) prediction, so the classifier learns a linear path between the domains:

    x̃_i = λ_i x_s(i) + (1 - λ_i) x_t,i,    q̃_i = λ_i onehot(y_s(i)) + (1 - λ_i) softmax(z_t,i),
    L   = -1/B sum_i q̃_i . log softmax(model(x̃_i)),     λ_i ~ Beta(α, α),

over the first min(length) frames of the pair (both inputs valid there). In training the partner s(i)
is a random source row; in eval mode (a pure function of the inputs, for tests) it is the source row
nearest in embedding space and λ = 1/2. The mixed rows pass the model once more (`inputs.classify`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sed_uda.adaptation.base import AdaptationInputs, AdaptationLoss, AdaptationOutput, float32_math


def mix_frames(
    source_x: Tensor, source_lengths: Tensor, target_x: Tensor, target_lengths: Tensor, lam: Tensor
) -> tuple[Tensor, Tensor]:
    """Row-wise `lam * source + (1 - lam) * target` over the first min(lengths) frames (zero after)."""
    frames = min(source_x.shape[-1], target_x.shape[-1])
    lengths = torch.minimum(source_lengths, target_lengths).clamp(max=frames)
    valid = (torch.arange(frames, device=target_x.device) < lengths[:, None]).to(target_x.dtype)[:, None, :]
    mixed = lam[:, None, None] * source_x[..., :frames] + (1 - lam[:, None, None]) * target_x[..., :frames]
    return mixed * valid, lengths


class DomainMixup(AdaptationLoss):
    """Soft cross-entropy of source-target mixes to mixed labels (target: the model's own prediction).

    Args:
        weight: trade-off of the mixup loss.
        alpha: Beta(α, α) parameter of the mixing weights.
    """

    name = "mixup"
    reads_frames = True

    def __init__(self, weight: float = 1.0, alpha: float = 0.2) -> None:
        super().__init__(weight)
        if alpha <= 0:
            raise ValueError(f"DomainMixup: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def partners(self, inputs: AdaptationInputs) -> tuple[Tensor, Tensor]:
        """(source row for each target row, mixing weight λ of the source side)."""
        n_target, n_source = len(inputs.target_logits), len(inputs.source_logits)
        device = inputs.target_logits.device
        if self.training:
            lam = torch.distributions.Beta(self.alpha, self.alpha).sample((n_target,)).to(device)
            return torch.randint(0, n_source, (n_target,), device=device), lam
        similarity = (
            F.normalize(inputs.target_embedding.detach().float(), dim=1)
            @ F.normalize(inputs.source_embedding.detach().float(), dim=1).T
        )
        return similarity.argmax(1), torch.full((n_target,), 0.5, device=device)

    def forward(self, inputs: AdaptationInputs) -> AdaptationOutput:
        if inputs.source_x is None or inputs.source_lengths is None:
            raise ValueError("DomainMixup needs AdaptationInputs.source_x and source_lengths")
        partner, lam = self.partners(inputs)
        source_x, source_lengths = inputs.source_x[partner], inputs.source_lengths[partner]
        x, lengths = mix_frames(source_x, source_lengths, inputs.target_x, inputs.target_lengths, lam)
        with float32_math(inputs.target_logits):
            classes = inputs.target_logits.shape[1]
            target_probs = inputs.target_logits.detach().float().softmax(-1)
            source_onehot = F.one_hot(inputs.source_labels[partner], classes).float()
            soft = lam[:, None] * source_onehot + (1 - lam[:, None]) * target_probs
            log_probs = inputs.classify(x, lengths).float().log_softmax(-1)
            loss = -(soft * log_probs).sum(-1).mean()
        return loss, {"loss": loss, "lambda": lam.mean()}

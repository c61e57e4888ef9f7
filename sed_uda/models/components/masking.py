"""Padding-aware helpers: rows of a batch are zero-padded past their valid `lengths`.

Every encoder zeroes the padded frames after each normalisation and pools over valid frames only,
so (in eval mode) a row's embedding does not depend on how much padding its batch adds.
"""

from __future__ import annotations

import torch


def time_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Boolean (batch, frames) mask, True on the valid frames of each row."""
    return torch.arange(frames, device=lengths.device) < lengths.unsqueeze(1)


def halved_lengths(lengths: torch.Tensor, frames: int, size: int) -> torch.Tensor:
    """Valid lengths after the stride-2 stages (each maps n -> ceil(n / 2)) that took `frames` to `size`."""
    while frames > size:
        frames, lengths = (frames + 1) // 2, (lengths + 1) // 2
    if frames != size:
        raise ValueError(f"a time axis of {size} frames is not a halving of the input's {frames} frames")
    return lengths


def masked_mean_std(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over the last (time) axis of `x`, counting only valid frames.

    Computed in float32 so bf16 autocast does not lose precision in the long sums.
    """
    mask = time_mask(lengths, x.shape[-1]).to(torch.float32)
    mask = mask.view(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])
    count = mask.sum(-1).clamp_min(1.0)
    x = x.float()
    mean = (x * mask).sum(-1) / count
    var = ((x - mean.unsqueeze(-1)).square() * mask).sum(-1) / count
    return mean, var.add(1e-5).sqrt()


def clean_lengths(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Lengths as int64 in [1, frames] (an empty row would otherwise divide by zero)."""
    return lengths.to(torch.long).clamp(1, frames)

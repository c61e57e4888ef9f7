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

    Two batched matrix products with the mask (sums of x and of x^2) instead of several masked
    element-wise passes: this pooling is the hot spot of the stats encoder. Computed in float32 with
    autocast off, so bf16 does not lose precision in the long sums.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        rows, frames = x.shape[0], x.shape[-1]
        mask = time_mask(lengths, frames).to(torch.float32).unsqueeze(-1)
        count = mask.sum(1).clamp_min(1.0)
        flat = x.float().reshape(rows, -1, frames)
        mean = torch.bmm(flat, mask) / count.unsqueeze(1)
        square = torch.bmm(flat.square(), mask) / count.unsqueeze(1)
        var = (square - mean.square()).clamp_min(0.0)
        shape = x.shape[:-1]
        return mean.reshape(shape), var.add(1e-5).sqrt().reshape(shape)


def clean_lengths(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Lengths as int64 in [1, frames] (an empty row would otherwise divide by zero)."""
    return lengths.to(torch.long).clamp(1, frames)

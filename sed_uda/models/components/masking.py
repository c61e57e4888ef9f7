"""Padding-aware helpers: rows of a batch are zero-padded past their valid `lengths`.

Every encoder zeroes the padded frames after each normalisation and pools over valid frames only,
so (in eval mode) a row's embedding does not depend on how much padding its batch adds. The mask
and the masked pooling itself live in `sed_uda.data.pooling`, shared with the data module.
"""

from __future__ import annotations

import torch


def halved_lengths(lengths: torch.Tensor, frames: int, size: int) -> torch.Tensor:
    """Valid lengths after the stride-2 stages (each maps n -> ceil(n / 2)) that took `frames` to `size`."""
    while frames > size:
        frames, lengths = (frames + 1) // 2, (lengths + 1) // 2
    if frames != size:
        raise ValueError(f"a time axis of {size} frames is not a halving of the input's {frames} frames")
    return lengths


def clean_lengths(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Lengths as int64 in [1, frames] (an empty row would otherwise divide by zero)."""
    return lengths.to(torch.long).clamp(1, frames)

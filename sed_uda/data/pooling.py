"""Per-utterance statistics: the mean and standard deviation over time of every feature channel.

One definition for everything that pools an utterance: the stats encoder pools its input batches with
`masked_mean_std`, the data module pools whole utterances once with `utterance_statistics` (which
gathers them as batches are gathered and calls the same function), and the probe and the
logistic-regression baselines pool their inputs the same way, so "the same inputs" holds by
construction. The 1D-CNN and ResNet encoders pool their feature maps with it too.
"""

from __future__ import annotations

import torch

from sed_uda.data.crops import centre_crops, utterance_sizes

POOL_BATCH = 256
"""Utterances gathered at a time by `utterance_statistics` (memory: one padded batch)."""


def time_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Boolean (batch, frames) mask, True on the valid frames of each row."""
    return torch.arange(frames, device=lengths.device) < lengths.unsqueeze(1)


def masked_mean_std(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (population, plus 1e-5 under the root) over the last (time) axis of
    `x`, counting only valid frames.

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


def utterance_statistics(
    frames: torch.Tensor, offsets: torch.Tensor, rows: torch.Tensor, max_frames: int | None = None
) -> torch.Tensor:
    """(len(rows), 2 * channels) float32: each utterance's per-channel means, then its stds, over its
    frames (its centred `max_frames` crop when longer; None: all), as `masked_mean_std` computes them
    on a batch.

    Utterance i is frames[offsets[i]:offsets[i + 1]] (the cache layout); rows are pooled in batches of
    similar length, so padding stays small.
    """
    out = torch.empty(len(rows), 2 * frames.shape[1], dtype=torch.float32)
    sizes = utterance_sizes(offsets, rows)
    longest = int(sizes.max()) if len(rows) else 1
    order = torch.argsort(sizes, stable=True)
    for picks in torch.split(order, POOL_BATCH):
        x, lengths = centre_crops(frames, offsets, rows[picks], max_frames or longest)
        mean, std = masked_mean_std(x, lengths)
        out[picks] = torch.cat([mean, std], dim=1)
    return out

"""Feature-domain augmentation of a gathered training batch (vectorised; no per-utterance Python).

Inputs are standardised frames (batch, channels, frames), zero-padded past `lengths`. Each transform
draws one random value per row from torch's global generator, so a seeded run is reproducible:

- time masks (SpecAugment, Park et al. 2019): `time_masks` spans of up to `time_mask_frames` frames
  set to 0 (the standardised mean);
- channel masks: `channel_masks` bands of up to `channel_mask_width` adjacent feature channels set to 0;
- gain: a per-row offset ~ N(0, gain) added to every valid frame (a level change shifts log-domain
  features by a constant);
- time shift: each row rolled circularly inside its valid frames by up to `shift_frames`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sed_uda.data.pooling import time_mask


class FeatureAugment(nn.Module):
    """Random masks, gain and time shift of a training batch; the identity in eval mode.

    Args:
        time_masks: time spans masked per row.
        time_mask_frames: longest masked span, in frames.
        channel_masks: channel bands masked per row.
        channel_mask_width: widest masked band, in channels.
        gain: standard deviation of the per-row offset (0: off).
        shift_frames: largest circular time shift, in frames (0: off).
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_mask_frames: int = 12,
        channel_masks: int = 2,
        channel_mask_width: int = 12,
        gain: float = 0.2,
        shift_frames: int = 16,
    ) -> None:
        super().__init__()
        for name, value in locals().items():
            if name not in ("self", "__class__") and value < 0:
                raise ValueError(f"FeatureAugment: {name} must be >= 0, got {value}")
        self.time_masks, self.time_mask_frames = time_masks, time_mask_frames
        self.channel_masks, self.channel_mask_width = channel_masks, channel_mask_width
        self.gain, self.shift_frames = gain, shift_frames

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if not self.training:
            return x
        rows, channels, frames = x.shape
        lengths = lengths.to(x.device).long().clamp(1, frames)
        valid = time_mask(lengths, frames)
        if self.shift_frames > 0:
            shift = torch.randint(-self.shift_frames, self.shift_frames + 1, (rows, 1), device=x.device)
            steps = torch.arange(frames, device=x.device)
            source = torch.where(valid, (steps - shift) % lengths[:, None], steps)
            x = x.gather(2, source[:, None, :].expand(rows, channels, frames))
        drop = _spans(rows, frames, lengths, self.time_masks, self.time_mask_frames, x.device)[:, None, :]
        full = torch.full_like(lengths, channels)
        bands = _spans(rows, channels, full, self.channel_masks, self.channel_mask_width, x.device)
        x = x.masked_fill(drop | bands[:, :, None], 0.0)
        if self.gain > 0:
            offset = torch.randn(rows, 1, 1, device=x.device, dtype=x.dtype) * self.gain
            x = x + offset * valid[:, None, :].to(x.dtype)
        return x


def _spans(rows: int, size: int, limits: Tensor, count: int, longest: int, device: torch.device) -> Tensor:
    """(rows, size) mask of `count` random spans of 0..`longest` positions inside each row's limit."""
    mask = torch.zeros(rows, size, dtype=torch.bool, device=device)
    positions = torch.arange(size, device=device)
    for _ in range(count if longest > 0 else 0):
        width = torch.minimum(torch.randint(0, longest + 1, (rows,), device=device), limits)
        start = (torch.rand(rows, device=device) * (limits - width + 1)).long()
        mask |= (positions >= start[:, None]) & (positions < (start + width)[:, None])
    return mask

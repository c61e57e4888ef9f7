"""The temporal 1D-CNN encoder over (batch, channels, frames) features."""

from __future__ import annotations

import torch
from torch import nn

from sed_uda.data.pooling import masked_mean_std, time_mask
from sed_uda.models.components.masking import clean_lengths


class CNN1dEncoder(nn.Module):
    """Temporal CNN: `depth` blocks of Conv1d -> BatchNorm -> ReLU -> max-pool(2) -> dropout over the
    feature channels, then masked mean+std pooling over time and a linear projection.

    Each block halves the time resolution (a 128-frame input has 8 frames after 4 blocks).
    """

    def __init__(
        self,
        in_channels: int,
        width: int = 64,
        depth: int = 4,
        kernel_size: int = 5,
        dropout: float = 0.1,
        embedding_dim: int = 128,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd so convolutions keep the frame count, got {kernel_size}"
            )
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for block in range(depth):
            self.convs.append(
                nn.Conv1d(
                    in_channels if block == 0 else width,
                    width,
                    kernel_size,
                    padding=kernel_size // 2,
                    bias=False,
                )
            )
            self.norms.append(nn.BatchNorm1d(width))
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Sequential(nn.Linear(2 * width, embedding_dim), nn.ReLU(inplace=True))
        self.out_dim = embedding_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = clean_lengths(lengths, x.shape[-1])
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(conv(x))
            x = x * time_mask(lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
            # ReLU output is >= 0, so max-pooling a masked zero never beats a valid frame.
            x = self.dropout(self.pool(torch.relu(x)))
            lengths = (lengths + 1) // 2
        mean, std = masked_mean_std(x, lengths)
        return self.projection(torch.cat([mean, std], dim=1))

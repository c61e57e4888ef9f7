"""The utterance-statistics encoder: a strong, cheap baseline for emotion recognition."""

from __future__ import annotations

import torch
from torch import nn

from sed_uda.data.pooling import masked_mean_std
from sed_uda.models.components.masking import clean_lengths


class StatsEncoder(nn.Module):
    """Masked mean and standard deviation over time of every input channel, then an MLP.

    Pooled frame statistics are the classic feature set of paralinguistics (openSMILE functionals);
    a linear model on them is the baseline a reviewer asks for first. This encoder keeps that input
    and lets any adaptation loss act on the MLP's embedding. The pooled vector is standardised
    first (a batch norm without affine terms, like the baseline's scaler): means and standard
    deviations of different channels differ in scale by orders of magnitude, and without it the
    MLP trails the linear model on the same vector. Feed it whole utterances (`data.crop_frames`
    above the longest one, as configs/encoder/stats.yaml does): statistics of short crops are
    noisier than the whole-utterance ones it is evaluated on.

    It also accepts the pooled vectors themselves: x of shape (batch, 2 * in_channels, 1), each row
    an utterance's means then stds (`sed_uda.data.pooling.utterance_statistics`). The data module
    serves those when training sees whole utterances and nothing augments the frames (the CLI asks
    for them through `accepts_pooled`), so the statistics are computed once instead of every step.

    Args:
        in_channels: feature channels per frame (the pooled vector has twice as many).
        hidden: width of the hidden layer.
        embedding_dim: size of the embedding.
        dropout: dropout before each linear layer.
        input_norm: standardise the pooled vector (batch statistics of the training batches, which
            hold both domains when the model adapts).
    """

    accepts_pooled = True
    """Inputs may be pooled statistics (batch, 2 * in_channels, 1) instead of frames."""

    def __init__(
        self,
        in_channels: int = 176,
        hidden: int = 256,
        embedding_dim: int = 128,
        dropout: float = 0.2,
        input_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.net = nn.Sequential(
            nn.BatchNorm1d(2 * in_channels, affine=False) if input_norm else nn.Identity(),
            nn.Dropout(dropout),
            nn.Linear(2 * in_channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, embedding_dim),
            nn.ReLU(inplace=True),
        )
        self.out_dim = embedding_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 2 * self.in_channels:
            return self.net(x[..., 0].float())
        mean, std = masked_mean_std(x, clean_lengths(lengths, x.shape[-1]))
        return self.net(torch.cat([mean, std], dim=1))

"""Utterance encoders: (batch, channels, frames) features + valid lengths -> (batch, out_dim) embeddings.

Rows of a batch are zero-padded past their length.  Every encoder zeroes the padded frames after
each normalisation and pools over valid frames only, so (in eval mode) a row's embedding does not
depend on how much padding its batch adds.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

ENCODERS: tuple[str, ...] = ("cnn1d", "resnet50")


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


def _clean_lengths(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Lengths as int64 in [1, frames] (an empty row would otherwise divide by zero)."""
    return lengths.to(torch.long).clamp(1, frames)


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
        lengths = _clean_lengths(lengths, x.shape[-1])
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(conv(x))
            x = x * time_mask(lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
            # ReLU output is >= 0, so max-pooling a masked zero never beats a valid frame.
            x = self.dropout(self.pool(torch.relu(x)))
            lengths = (lengths + 1) // 2
        mean, std = masked_mean_std(x, lengths)
        return self.projection(torch.cat([mean, std], dim=1))


class ResNet50Encoder(nn.Module):
    """torchvision ResNet-50 on the (channels, frames) feature map as a one-channel image.

    conv1 takes one input channel and fc is removed; after layer4 the map is averaged over valid
    time steps and over frequency (out_dim 2048).  A forward hook zeroes padded frames after every
    BatchNorm, which keeps padding from leaking into valid frames through the convolutions.
    `weights_path` optionally loads an ImageNet ResNet-50 state dict (conv1's RGB kernels are
    averaged, fc dropped) or one saved from this encoder; nothing is ever downloaded.
    """

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        net = torchvision.models.resnet50(weights=None)
        self.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_dim = 2048
        self._lengths: torch.Tensor | None = None
        self._frames = 0
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.register_forward_hook(self._mask_padding)
        if weights_path is not None:
            self.load_weights(weights_path)

    def _mask_padding(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        lengths = halved_lengths(self._lengths, self._frames, output.shape[-1])
        return output * time_mask(lengths, output.shape[-1])[:, None, None, :].to(output.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self._frames = x.shape[-1]
        self._lengths = _clean_lengths(lengths, self._frames)
        try:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x.unsqueeze(1)))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            mean, _ = masked_mean_std(x, halved_lengths(self._lengths, self._frames, x.shape[-1]))
        finally:
            self._lengths = None
        return mean.mean(-1)

    def load_weights(self, weights_path: str) -> None:
        """Load an ImageNet ResNet-50 state dict or one saved from this encoder (safe loading only)."""
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"ResNet-50 weights file {path} does not exist; check resnet_weights")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(
                f"cannot read ResNet-50 weights from {path} ({type(error).__name__}: {error}); it must be a "
                "state dict saved with torch.save(model.state_dict(), path)"
            ) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        conv1 = state.get("conv1.weight")
        if conv1 is not None and conv1.dim() == 4 and conv1.shape[1] == 3:
            state["conv1.weight"] = conv1.mean(dim=1, keepdim=True)
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not a ResNet-50 state dict: {len(missing)} missing keys (e.g. {missing[:3]}), "
                f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}); pass torchvision ImageNet "
                "weights or a file saved from ResNet50Encoder.state_dict()"
            )
        try:
            self.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(f"{path} has tensors of the wrong shape for ResNet-50: {error}") from None


def build_encoder(name: str, in_channels: int, **kwargs) -> nn.Module:
    """Encoder by name: "cnn1d" (CNN1dEncoder(in_channels, **kwargs)) or "resnet50"
    (ResNet50Encoder(**kwargs); the feature map is one image channel, so in_channels is not used)."""
    if name == "cnn1d":
        return CNN1dEncoder(in_channels, **kwargs)
    if name == "resnet50":
        return ResNet50Encoder(**kwargs)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")

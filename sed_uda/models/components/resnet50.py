"""torchvision's ResNet-50 over the feature map as a one-channel image (the poster's encoder)."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from sed_uda.data.pooling import masked_mean_std, time_mask
from sed_uda.models.components.masking import clean_lengths, halved_lengths


class ResNet50Encoder(nn.Module):
    """torchvision ResNet-50 on the (channels, frames) feature map as a one-channel image.

    conv1 takes one input channel and fc is removed; after layer4 the map is averaged over valid
    time steps and over frequency (out_dim 2048).  A forward hook zeroes padded frames after every
    BatchNorm, which keeps padding from leaking into valid frames through the convolutions.
    `weights_path` optionally loads an ImageNet ResNet-50 state dict (conv1's RGB kernels are
    averaged, fc dropped) or one saved from this encoder; nothing is ever downloaded.
    """

    def __init__(self, in_channels: int = 176, weights_path: str | None = None) -> None:
        """
        Args:
            in_channels: feature channels, the image's height (any height works: the map is
                averaged over frequency after layer4).
            weights_path: optional ResNet-50 state dict file (ImageNet or saved from this encoder).
        """
        super().__init__()
        self.in_channels = in_channels
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
        self._lengths = clean_lengths(lengths, self._frames)
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
            raise FileNotFoundError(
                f"ResNet-50 weights file {path} does not exist; check --model.encoder.init_args.weights_path"
            )
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

"""Encoders, each class on its own: shapes, padding invariance, ResNet-50 weight loading and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from sed_uda.models.components.cnn1d import CNN1dEncoder
from sed_uda.models.components.resnet50 import ResNet50Encoder
from sed_uda.models.components.stats import StatsEncoder

torch.set_num_threads(1)


def _padded_batch(channels: int, lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features zero-padded past each row's length, as the data module delivers them."""
    x = torch.randn(len(lengths), channels, max(lengths), generator=torch.Generator().manual_seed(seed))
    for row, length in enumerate(lengths):
        x[row, :, length:] = 0
    return x, torch.tensor(lengths)


@pytest.mark.parametrize(("depth", "embedding_dim"), [(1, 8), (4, 32)])
def test_cnn1d_shapes(depth: int, embedding_dim: int) -> None:
    encoder = CNN1dEncoder(12, width=16, depth=depth, embedding_dim=embedding_dim)
    x, lengths = _padded_batch(12, [30, 7, 1])
    out = encoder(x, lengths)
    assert out.shape == (3, embedding_dim) == (3, encoder.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("embedding_dim", [8, 32])
def test_stats_shapes(embedding_dim: int) -> None:
    encoder = StatsEncoder(12, hidden=16, embedding_dim=embedding_dim)
    x, lengths = _padded_batch(12, [30, 7, 1])
    out = encoder(x, lengths)
    assert out.shape == (3, embedding_dim) == (3, encoder.out_dim)
    assert torch.isfinite(out).all()


def test_stats_encoder_pools_the_mean_and_std_of_valid_frames_only() -> None:
    encoder = StatsEncoder(4, hidden=8, embedding_dim=8).eval()
    seen = []
    encoder.net.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    x, lengths = _padded_batch(4, [9, 5])
    x[1, :, 5:] = 100.0  # whatever lies past a row's length must not count
    with torch.no_grad():
        encoder(x, lengths)
    (pooled,) = seen
    for row, n in enumerate([9, 5]):
        frames = x[row, :, :n].double()
        expected = torch.cat([frames.mean(-1), (frames.var(-1, unbiased=False) + 1e-5).sqrt()])
        torch.testing.assert_close(pooled[row].double(), expected, rtol=1e-4, atol=1e-4)


def test_stats_encoder_does_not_care_about_the_scale_of_a_channel() -> None:
    """A channel in other units (e.g. energy in Pa instead of dB) trains the same model: the
    pooled vector is standardised before the MLP, as the logistic-regression baseline's is."""
    x, lengths = _padded_batch(4, [40, 31, 25, 12, 9, 33])
    scaled = x.clone()
    scaled[:, 2] *= 1000.0
    torch.manual_seed(0)
    encoder = StatsEncoder(4, hidden=8, embedding_dim=8, dropout=0.0)
    torch.testing.assert_close(encoder(scaled, lengths), encoder(x, lengths), rtol=1e-3, atol=1e-4)
    unnormalised = StatsEncoder(4, hidden=8, embedding_dim=8, dropout=0.0, input_norm=False)
    assert not torch.allclose(unnormalised(scaled, lengths), unnormalised(x, lengths), atol=1e-2)


ENCODERS = {
    "cnn1d": lambda: CNN1dEncoder(16),
    "stats": lambda: StatsEncoder(16),
    "resnet50": lambda: ResNet50Encoder(16),
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_padding_never_changes_a_rows_embedding(name: str) -> None:
    torch.manual_seed(0)
    encoder = ENCODERS[name]().eval()
    assert encoder.in_channels == 16
    lengths = [70, 41, 9]
    x, lengths_tensor = _padded_batch(16, lengths)
    with torch.no_grad():
        batched = encoder(x, lengths_tensor)
        for row, length in enumerate(lengths):
            alone = encoder(x[row : row + 1, :, :length], lengths_tensor[row : row + 1])
            assert torch.allclose(alone[0], batched[row], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_resnet50_runs_on_a_tiny_cpu_input_and_trains() -> None:
    encoder = ResNet50Encoder()
    x, lengths = _padded_batch(16, [32, 20])
    out = encoder(x, lengths)
    assert out.shape == (2, 2048) and encoder.out_dim == 2048
    out.sum().backward()
    assert encoder.conv1.weight.grad is not None and encoder.conv1.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_resnet50_loads_a_file_saved_from_the_encoder(tmp_path: Path) -> None:
    torch.manual_seed(1)
    saved = ResNet50Encoder().eval()
    path = tmp_path / "encoder.pt"
    torch.save(saved.state_dict(), path)
    loaded = ResNet50Encoder(weights_path=str(path)).eval()
    fresh = ResNet50Encoder().eval()
    x, lengths = _padded_batch(16, [32, 25])
    with torch.no_grad():
        assert torch.equal(loaded(x, lengths), saved(x, lengths))
        assert not torch.allclose(fresh(x, lengths), saved(x, lengths))


@pytest.mark.slow
def test_resnet50_loads_an_imagenet_state_dict(tmp_path: Path) -> None:
    imagenet = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(imagenet, path)
    encoder = ResNet50Encoder(weights_path=str(path))
    assert torch.equal(encoder.conv1.weight, imagenet["conv1.weight"].mean(dim=1, keepdim=True))
    assert torch.equal(encoder.layer4[2].conv3.weight, imagenet["layer4.2.conv3.weight"])
    assert not any(name.startswith("fc.") for name in encoder.state_dict())


@pytest.mark.slow
def test_resnet50_bad_weight_files_fail_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    with pytest.raises(
        FileNotFoundError, match="missing.pt does not exist; check --model.encoder.init_args.weights_path"
    ):
        ResNet50Encoder(weights_path=str(missing))

    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read ResNet-50 weights from .*notes.txt"):
        ResNet50Encoder(weights_path=str(garbage))

    other = tmp_path / "cnn1d.pt"
    torch.save(CNN1dEncoder(16).state_dict(), other)
    with pytest.raises(ValueError, match="cnn1d.pt is not a ResNet-50 state dict"):
        ResNet50Encoder(weights_path=str(other))

    state = ResNet50Encoder().state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 1, 1)
    wrong_shape = tmp_path / "wrong_shape.pt"
    torch.save(state, wrong_shape)
    with pytest.raises(ValueError, match="wrong_shape.pt has tensors of the wrong shape"):
        ResNet50Encoder(weights_path=str(wrong_shape))


def test_cnn1d_rejects_even_kernels_and_no_blocks() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        CNN1dEncoder(16, kernel_size=4)
    with pytest.raises(ValueError, match="depth must be at least 1"):
        CNN1dEncoder(16, depth=0)

"""The torch front end gives librosa's frames on the CPU: zcr exactly, the dB blocks within 2e-3."""

from __future__ import annotations

import numpy as np
import pytest

from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.frontends.torch_frames import TorchFrames
from tests.features.test_librosa_frames import _speechlike

TOLERANCE = {"zcr": 0.0, "mfcc": 2e-3, "mel": 2e-3, "contrast": 2e-3}
"""Largest absolute difference allowed per block (zcr is a count; the others are in dB or DCTs of dB,
up to |600|, where float32 rounding of two different FFTs leaves differences around 5e-4)."""
SETTINGS = {
    "default": {},
    "small": {"n_fft": 512, "hop_length": 160, "n_mels": 64, "n_mfcc": 20, "n_contrast_bands": 5},
}


@pytest.mark.parametrize("block", list(TOLERANCE))
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("n_samples", [16_000, 12_345])
def test_each_block_matches_librosa_on_the_cpu(block: str, setting: str, n_samples: int) -> None:
    reference, in_torch = LibrosaFrames(**SETTINGS[setting]), TorchFrames(**SETTINGS[setting])
    y = _speechlike(n_samples, reference.sample_rate)
    expected, got = reference.extract(y), in_torch.extract(y)
    assert got.shape == expected.shape and got.dtype == np.float32
    columns = reference.slices()[block]
    np.testing.assert_allclose(got[:, columns], expected[:, columns], rtol=1e-5, atol=TOLERANCE[block])


def test_zcr_counts_exact_zeros_and_edge_padding_as_librosa_does() -> None:
    y = np.zeros(5000, dtype=np.float32)
    y[1000:3000] = np.tile([0.5, 0.0, -0.5, 1e-12], 500)  # a zero and a value under the dead band
    y[-1] = -0.3  # the last sample is repeated into the padding
    frames = LibrosaFrames()
    np.testing.assert_array_equal(TorchFrames().extract(y)[:, 0], frames.extract(y)[:, 0])


def test_the_torch_front_end_is_recorded_as_its_own_and_asks_for_a_device() -> None:
    assert TorchFrames().config()["class_path"] == "sed_uda.features.frontends.torch_frames.TorchFrames"
    assert TorchFrames.runs_on_device and not LibrosaFrames.runs_on_device
    assert "torch" in TorchFrames().versions()

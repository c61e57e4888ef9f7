"""The shared-STFT extractor gives exactly what the four independent librosa calls give."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from sed_uda.features.frontends.librosa import BLOCK_NAMES, LibrosaFrames

CONFIGS = [
    LibrosaFrames(),
    LibrosaFrames(n_fft=512, hop_length=160, n_mels=64, n_mfcc=20, n_contrast_bands=5, contrast_fmin=150.0),
]


def _speechlike(n_samples: int, sample_rate: int) -> np.ndarray:
    """A gliding tone with harmonics, noise and a silent gap: every feature has something to measure."""
    t = np.arange(n_samples) / sample_rate
    pitch = 2 * np.pi * (120 * t + 80 * t**2)
    y = (
        0.3 * np.sin(pitch)
        + 0.1 * np.sin(3 * pitch)
        + 0.03 * np.random.default_rng(0).standard_normal(n_samples)
    )
    y[n_samples // 3 : n_samples // 2] *= 0.01
    return y.astype(np.float32)


def _librosa_reference(y: np.ndarray, config: LibrosaFrames) -> dict[str, np.ndarray]:
    """Each block from its own librosa call on the raw signal, as (channels, frames)."""
    common = {"sr": config.sample_rate, "n_fft": config.n_fft, "hop_length": config.hop_length}
    mel = librosa.feature.melspectrogram(y=y, n_mels=config.n_mels, **common)
    return {
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=config.n_fft, hop_length=config.hop_length),
        "mfcc": librosa.feature.mfcc(y=y, n_mfcc=config.n_mfcc, n_mels=config.n_mels, **common),
        "mel": librosa.power_to_db(mel),
        "contrast": librosa.feature.spectral_contrast(
            y=y, n_bands=config.n_contrast_bands, fmin=config.contrast_fmin, **common
        ),
    }


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "small"])
@pytest.mark.parametrize("n_samples", [16_000, 12_345])
def test_every_block_matches_its_librosa_call(config: LibrosaFrames, n_samples: int) -> None:
    y = _speechlike(n_samples, config.sample_rate)
    features = config.extract(y)
    reference = _librosa_reference(y, config)
    assert features.dtype == np.float32
    assert features.shape == (1 + n_samples // config.hop_length, config.n_channels)
    for name, block in config.slices().items():
        expected = reference[name]
        assert block.stop - block.start == expected.shape[0], name
        np.testing.assert_allclose(features[:, block].T, expected, rtol=1e-5, atol=1e-4, err_msg=name)


def test_blocks_are_stacked_in_feature_name_order() -> None:
    config = CONFIGS[1]
    slices = config.slices()
    assert list(slices) == list(BLOCK_NAMES)
    starts = [slices[name].start for name in BLOCK_NAMES]
    assert starts == sorted(starts) and starts[0] == 0
    assert slices[BLOCK_NAMES[-1]].stop == config.n_channels


def test_extraction_is_deterministic_and_keeps_absolute_level() -> None:
    config = LibrosaFrames()
    y = _speechlike(20_000, config.sample_rate)
    first = config.extract(y)
    np.testing.assert_array_equal(first, config.extract(y.copy()))
    louder = config.extract(2 * y)
    mel = config.slices()["mel"]
    # power_to_db is absolute (ref=1): doubling the amplitude adds 20*log10(2) dB where nothing is clipped
    unclipped = first[:, mel] > first[:, mel].max() - 60
    np.testing.assert_allclose((louder - first)[:, mel][unclipped], 20 * np.log10(2), atol=1e-3)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"n_mfcc": 40, "n_mels": 32}, "n_mfcc=40"),
        ({"n_contrast_bands": 7, "contrast_fmin": 200.0}, "n_contrast_bands=7"),
    ],
)
def test_impossible_configs_are_refused_with_the_field_named(changes: dict, named: str) -> None:
    config = LibrosaFrames(**changes)
    with pytest.raises(ValueError, match=named):
        config.check()
    with pytest.raises(ValueError, match=named):
        config.extract(np.zeros(4000, dtype=np.float32) + 0.1)

"""Frame features of one utterance: zcr, MFCC, log-mel and spectral contrast from one STFT.

librosa is the reference: every block equals the matching `librosa.feature` call on the raw
signal. The speed comes from computing |STFT| once per utterance and building the mel and
contrast filterbanks once per configuration, where four independent librosa calls would run
three STFTs and rebuild both filterbanks every time.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np

from sed_uda.features.config import FeatureConfig


def check_config(config: FeatureConfig) -> None:
    """ValueError naming the fields when `config` cannot give `config.n_channels` channels."""
    if config.n_mfcc > config.n_mels:
        raise ValueError(
            f"n_mfcc={config.n_mfcc} exceeds n_mels={config.n_mels}: MFCCs are the DCT of the log-mel, "
            "so there are at most n_mels of them; lower n_mfcc or raise n_mels"
        )
    top_band_start = config.contrast_fmin * 2.0 ** (config.n_contrast_bands - 1)
    if top_band_start >= config.sample_rate / 2:
        raise ValueError(
            f"spectral contrast bands reach past Nyquist ({config.sample_rate / 2:g} Hz) with "
            f"contrast_fmin={config.contrast_fmin} and n_contrast_bands={config.n_contrast_bands}; "
            "lower either one"
        )


@lru_cache(maxsize=8)
def mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """The (n_mels, 1 + n_fft // 2) mel basis librosa.feature.melspectrogram builds for `config`."""
    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)


@lru_cache(maxsize=8)
def contrast_bands(config: FeatureConfig) -> tuple[tuple[np.ndarray, int], ...]:
    """Per contrast band: the STFT bins it sorts and how many of them make a peak/valley.

    Follows librosa.feature.spectral_contrast exactly (octave bands from `contrast_fmin`, a
    shared edge bin, the last band running to Nyquist, quantile 0.02 with at least one bin).
    """
    freq = librosa.fft_frequencies(sr=config.sample_rate, n_fft=config.n_fft)
    n_bands = config.n_contrast_bands
    edges = np.zeros(n_bands + 2)
    edges[1:] = config.contrast_fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (f_low, f_high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        in_band = (freq >= f_low) & (freq <= f_high)
        idx = np.flatnonzero(in_band)
        if k > 0:
            in_band[idx[0] - 1] = True
        if k == n_bands:
            in_band[idx[-1] + 1 :] = True
        n_quantile = max(int(np.rint(0.02 * in_band.sum())), 1)
        bins = np.flatnonzero(in_band)
        if k < n_bands:
            bins = bins[:-1]
        bands.append((bins, n_quantile))
    return tuple(bands)


def _spectral_contrast(magnitude: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(n_bands + 1, frames) log peak/valley contrast of a magnitude spectrogram."""
    bands = contrast_bands(config)
    valley = np.empty((len(bands), magnitude.shape[1]))
    peak = np.empty_like(valley)
    for k, (bins, n_quantile) in enumerate(bands):
        ordered = np.sort(magnitude[bins], axis=0)
        valley[k] = ordered[:n_quantile].mean(axis=0)
        peak[k] = ordered[-n_quantile:].mean(axis=0)
    return librosa.power_to_db(peak) - librosa.power_to_db(valley)


def extract_features(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(frames, config.n_channels) float32 features of a mono signal at `config.sample_rate`.

    Channels are stacked in FEATURE_NAMES order (see `config.slices()`): zero-crossing rate,
    MFCC (DCT of the log-mel), log-mel in dB (power_to_db, top 80 dB) and spectral contrast.
    Frames are centred (frame t at sample t * hop_length), so frames = 1 + len(y) // hop_length.
    """
    check_config(config)
    y = np.asarray(y, dtype=np.float32)
    magnitude = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length, center=True))
    zcr = librosa.feature.zero_crossing_rate(
        y, frame_length=config.n_fft, hop_length=config.hop_length, center=True
    )
    log_mel = librosa.power_to_db(mel_filterbank(config) @ magnitude**2)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    contrast = _spectral_contrast(magnitude, config)
    return np.concatenate([zcr, mfcc, log_mel, contrast], axis=0).T.astype(np.float32)

"""The poster's frames: zcr, MFCC, log-mel and spectral contrast from one STFT (librosa).

librosa is the reference: every block equals the matching `librosa.feature` call on the raw signal.
The speed comes from computing |STFT| once per utterance and building the mel and contrast filterbanks
once per configuration, where four independent librosa calls would run three STFTs and rebuild both
filterbanks every time. The values are those of the caches written before front ends were components.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np

from sed_uda.features.frontends.base import FrontEnd, FrontEndError

BLOCK_NAMES: tuple[str, ...] = ("zcr", "mfcc", "mel", "contrast")
"""Feature blocks in the order they are stacked along the channel axis."""


@dataclass(frozen=True)
class LibrosaFrames(FrontEnd):
    """librosa parameters shared by all four features (one STFT serves them all).

    Args:
        sample_rate: Audio is resampled to this rate before extraction.
        min_duration_s: Shorter recordings are refused as unusable.
        n_fft: STFT window (and zcr frame) in samples.
        hop_length: Samples between frames (256 at 16 kHz: 16 ms).
        n_mels: Mel bands of the log-mel block.
        n_mfcc: MFCCs (DCT of the log-mel), at most n_mels.
        n_contrast_bands: Octave bands of spectral contrast (the block has one row more).
        contrast_fmin: Lower edge of the first contrast band, Hz.
    """

    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    n_mfcc: int = 40
    n_contrast_bands: int = 6
    contrast_fmin: float = 200.0

    @property
    def blocks(self) -> dict[str, int]:
        return {"zcr": 1, "mfcc": self.n_mfcc, "mel": self.n_mels, "contrast": self.n_contrast_bands + 1}

    def versions(self) -> dict[str, str]:
        return {"librosa": librosa.__version__}

    def check(self) -> None:
        if self.n_mfcc > self.n_mels:
            raise FrontEndError(
                f"n_mfcc={self.n_mfcc} exceeds n_mels={self.n_mels}: MFCCs are the DCT of the log-mel, "
                "so there are at most n_mels of them; lower n_mfcc or raise n_mels"
            )
        top_band_start = self.contrast_fmin * 2.0 ** (self.n_contrast_bands - 1)
        if top_band_start >= self.sample_rate / 2:
            raise FrontEndError(
                f"spectral contrast bands reach past Nyquist ({self.sample_rate / 2:g} Hz) with "
                f"contrast_fmin={self.contrast_fmin} and n_contrast_bands={self.n_contrast_bands}; "
                "lower either one"
            )

    def extract(self, signal: np.ndarray) -> np.ndarray:
        """(frames, n_channels) float32: zero-crossing rate, MFCC, log-mel in dB (power_to_db, top 80 dB)
        and spectral contrast. Frames are centred (frame t at sample t * hop_length), so
        frames = 1 + len(signal) // hop_length."""
        self.check()
        y = np.asarray(signal, dtype=np.float32)
        magnitude = np.abs(librosa.stft(y, n_fft=self.n_fft, hop_length=self.hop_length, center=True))
        zcr = librosa.feature.zero_crossing_rate(
            y, frame_length=self.n_fft, hop_length=self.hop_length, center=True
        )
        log_mel = librosa.power_to_db(mel_filterbank(self) @ magnitude**2)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc)
        contrast = _spectral_contrast(magnitude, self)
        return np.concatenate([zcr, mfcc, log_mel, contrast], axis=0).T.astype(np.float32)


@lru_cache(maxsize=8)
def mel_filterbank(frames: LibrosaFrames) -> np.ndarray:
    """The (n_mels, 1 + n_fft // 2) mel basis librosa.feature.melspectrogram builds for `frames`."""
    return librosa.filters.mel(sr=frames.sample_rate, n_fft=frames.n_fft, n_mels=frames.n_mels)


@lru_cache(maxsize=8)
def contrast_bands(frames: LibrosaFrames) -> tuple[tuple[np.ndarray, int], ...]:
    """Per contrast band: the STFT bins it sorts and how many of them make a peak/valley.

    Follows librosa.feature.spectral_contrast exactly (octave bands from `contrast_fmin`, a shared
    edge bin, the last band running to Nyquist, quantile 0.02 with at least one bin).
    """
    freq = librosa.fft_frequencies(sr=frames.sample_rate, n_fft=frames.n_fft)
    n_bands = frames.n_contrast_bands
    edges = np.zeros(n_bands + 2)
    edges[1:] = frames.contrast_fmin * (2.0 ** np.arange(0, n_bands + 1))
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


def _spectral_contrast(magnitude: np.ndarray, frames: LibrosaFrames) -> np.ndarray:
    """(n_bands + 1, frames) log peak/valley contrast of a magnitude spectrogram."""
    bands = contrast_bands(frames)
    valley = np.empty((len(bands), magnitude.shape[1]))
    peak = np.empty_like(valley)
    for k, (bins, n_quantile) in enumerate(bands):
        ordered = np.sort(magnitude[bins], axis=0)
        valley[k] = ordered[:n_quantile].mean(axis=0)
        peak[k] = ordered[-n_quantile:].mean(axis=0)
    return librosa.power_to_db(peak) - librosa.power_to_db(valley)

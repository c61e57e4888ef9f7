"""The librosa frames (zcr, MFCC, log-mel, spectral contrast) computed with torch, on the CPU or a GPU.

Same parameters and same definitions as `LibrosaFrames`, step for step: a zero-padded Hann STFT,
edge-padded zero-crossing frames, librosa's own mel basis, power_to_db with an 80 dB floor, the
orthonormal DCT-II, and the same contrast bands and quantiles; only the arithmetic runs in torch
(float32). The frames match librosa's within float32 rounding, tested per block
(tests/features/test_torch_frames.py): zcr exactly, the dB blocks within 2e-3 dB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from sed_uda.features.frontends.librosa import LibrosaFrames, contrast_bands, mel_filterbank

AMIN = 1e-10
TOP_DB = 80.0
ZERO_THRESHOLD = 1e-10
"""librosa's defaults: power floor of power_to_db, its dynamic range, and the zero-crossing dead band."""


def power_to_db(power: torch.Tensor) -> torch.Tensor:
    """librosa.power_to_db(power) (ref 1, amin 1e-10, top_db 80 below the array's maximum)."""
    db = 10.0 * torch.log10(torch.clamp(power, min=AMIN))
    return torch.maximum(db, db.max() - TOP_DB)


@lru_cache(maxsize=8)
def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """(n_mfcc, n_mels) orthonormal DCT-II, the transform librosa.feature.mfcc applies (scipy's dct)."""
    k, n = np.arange(n_mfcc)[:, None], np.arange(n_mels)[None, :]
    basis = np.sqrt(2.0 / n_mels) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels))
    basis[0] /= np.sqrt(2.0)
    return basis


@dataclass(frozen=True)
class TorchFrames(LibrosaFrames):
    """`LibrosaFrames` in torch: `prepare --front-end torch --device cuda` computes them on a GPU.

    Args: those of LibrosaFrames.
    """

    runs_on_device = True

    def versions(self) -> dict[str, str]:
        return {**super().versions(), "torch": torch.__version__}

    def extract(self, signal: np.ndarray) -> np.ndarray:
        return self.extract_batch([signal])[0]

    def extract_batch(self, signals: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        """Each signal's (frames, n_channels) float32 frames, computed on `device`."""
        self.check()
        with torch.inference_mode():
            return [self._frames(torch.as_tensor(np.asarray(y, np.float32), device=device)) for y in signals]

    def _frames(self, y: torch.Tensor) -> np.ndarray:
        window = torch.hann_window(self.n_fft, periodic=True, device=y.device)
        spectrum = torch.stft(
            y,
            self.n_fft,
            self.hop_length,
            window=window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        magnitude = spectrum.abs()
        mel = torch.as_tensor(mel_filterbank(self), device=y.device)
        log_mel = power_to_db(mel @ magnitude**2)
        dct = torch.as_tensor(dct_matrix(self.n_mfcc, self.n_mels), dtype=torch.float32, device=y.device)
        blocks = [self._zcr(y), dct @ log_mel, log_mel, self._contrast(magnitude)]
        return torch.cat(blocks, dim=0).T.float().cpu().numpy()

    def _zcr(self, y: torch.Tensor) -> torch.Tensor:
        """(1, frames) fraction of sign changes per edge-padded frame (librosa.feature.zero_crossing_rate)."""
        half = self.n_fft // 2
        padded = torch.cat([y[:1].expand(half), y, y[-1:].expand(half)])
        frames = padded.unfold(0, self.n_fft, self.hop_length)
        negative = (frames < 0) & (frames.abs() > ZERO_THRESHOLD)
        crossings = negative[:, 1:] != negative[:, :-1]
        return crossings.sum(dim=1, dtype=torch.float32)[None] / self.n_fft

    def _contrast(self, magnitude: torch.Tensor) -> torch.Tensor:
        """(n_bands + 1, frames) log peak/valley contrast over librosa's bands."""
        valleys, peaks = [], []
        for bins, n_quantile in contrast_bands(self):
            ordered = torch.sort(magnitude[torch.as_tensor(bins, device=magnitude.device)], dim=0).values
            valleys.append(ordered[:n_quantile].mean(dim=0))
            peaks.append(ordered[-n_quantile:].mean(dim=0))
        return power_to_db(torch.stack(peaks)) - power_to_db(torch.stack(valleys))

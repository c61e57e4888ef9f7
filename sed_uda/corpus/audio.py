"""Load one audio file for feature extraction, refusing files that would give meaningless features.

Every unusable case (missing, empty, bad header, unreadable data, NaN/inf, too short, silent or
near-silent) raises `AudioProblem` with a short reason, so the cache builder can skip the file and list
why. Conversions that make a usable file fit (down-mixing, resampling) are returned rather than printed,
so the caller can report them once for the whole corpus.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from sed_uda.errors import UserError

SILENCE_DBFS = -60.0
"""Recordings quieter than this (RMS) hold no usable speech: speech sits around -20 to -35 dBFS, and
2 s of digital silence with +-1 LSB dither of 16-bit audio is about -90 dBFS."""


class AudioProblem(UserError):
    """An audio file that cannot be used; `reason` is short and meant for users."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(str(path), reason)  # both in args, so the exception pickles across processes
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _soundfile_message(error: Exception) -> str:
    """libsndfile's own words, without soundfile's "Error opening '<path>': " prefix."""
    return getattr(error, "error_string", None) or str(error)


def _open(path: Path) -> sf.SoundFile:
    """The open file; AudioProblem when it is missing, empty or its header cannot be parsed."""
    if not path.is_file():
        raise AudioProblem(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise AudioProblem(path, "empty file (0 bytes)")
    try:
        return sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError) as error:
        raise AudioProblem(path, f"unreadable header: {_soundfile_message(error)}") from error


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header alone (no samples read); AudioProblem if unreadable."""
    with _open(Path(path)) as audio:
        return audio.frames / audio.samplerate


def load_audio(
    path: str | Path, sample_rate: int = 16000, min_duration_s: float = 0.25
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Mono float32 samples at `sample_rate`, and the conversions applied to get there.

    Raises AudioProblem for a missing or empty file, a bad header, unreadable data, and every problem
    `prepare_signal` refuses.
    """
    path = Path(path)
    with _open(path) as audio:
        native_rate = audio.samplerate
        try:
            samples = audio.read(dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as error:
            raise AudioProblem(path, f"unreadable data: {_soundfile_message(error)}") from error
    return prepare_signal(samples, native_rate, sample_rate, min_duration_s, path)


def prepare_signal(
    samples: np.ndarray, native_rate: int, sample_rate: int, min_duration_s: float, name: str | Path
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(samples, channels) float32 at `native_rate` -> mono float32 at `sample_rate` and the conversions.

    Shared by files and samples in memory, so both are checked alike. AudioProblem (named `name`) for
    NaN/inf samples, fewer than `min_duration_s` seconds (after resampling), all-zero samples, or a
    level below `SILENCE_DBFS` (digital silence with dither, a muted microphone).
    """
    if not np.isfinite(samples).all():
        raise AudioProblem(name, "contains NaN/inf samples")
    conversions = []
    channels = samples.shape[1]
    signal = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    if channels > 1:
        conversions.append(f"down-mixed {channels} channels to mono")
    if native_rate != sample_rate and len(signal) > 0:
        signal = librosa.resample(signal, orig_sr=native_rate, target_sr=sample_rate, res_type="soxr_hq")
        conversions.append(f"resampled {native_rate} Hz -> {sample_rate} Hz")
    duration = len(signal) / sample_rate
    if duration < min_duration_s:
        raise AudioProblem(name, f"too short: {duration:.2f} s < {min_duration_s:.2f} s")
    if not signal.any():
        raise AudioProblem(name, "silent: all samples are zero")
    level = rms_dbfs(signal)
    if level < SILENCE_DBFS:
        raise AudioProblem(name, f"near-silent: RMS level {level:.0f} dBFS < {SILENCE_DBFS:.0f} dBFS")
    return np.ascontiguousarray(signal, dtype=np.float32), tuple(conversions)


def rms_dbfs(signal: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-12))

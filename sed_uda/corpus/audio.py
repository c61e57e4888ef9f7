"""Load one wav for feature extraction, refusing files that would give meaningless features.

Every unusable case (missing, empty, bad header, unreadable data, NaN/inf, too short, silent) raises
`AudioProblem` with a short reason, so the cache builder can skip the file and list why. Conversions that
make a usable file fit (down-mixing, resampling) are returned rather than printed, so the caller can
report them once for the whole corpus.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from sed_uda.errors import UserError


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

    Raises AudioProblem for a missing or empty file, a bad header, unreadable data, NaN/inf samples,
    fewer than `min_duration_s` seconds (after resampling) or all-zero samples.
    """
    path = Path(path)
    with _open(path) as audio:
        native_rate = audio.samplerate
        try:
            samples = audio.read(dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as error:
            raise AudioProblem(path, f"unreadable data: {_soundfile_message(error)}") from error
    if not np.isfinite(samples).all():
        raise AudioProblem(path, "contains NaN/inf samples")
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
        raise AudioProblem(path, f"too short: {duration:.2f} s < {min_duration_s:.2f} s")
    if not signal.any():
        raise AudioProblem(path, "silent: all samples are zero")
    return np.ascontiguousarray(signal, dtype=np.float32), tuple(conversions)

"""Recordings to classify: find them, load and check them as `prepare` does, and extract their features.

Loading is `sed_uda.corpus.audio.load_audio` (the same checks and conversions as the cache builder) and
features come from the checkpoint's front end with one BLAS thread and float16 storage, as `prepare`
writes them, so a recording classified from its file gets exactly the frames its cache has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import librosa
import numpy as np
from threadpoolctl import threadpool_limits

from sed_uda.corpus.audio import AudioProblem, load_audio
from sed_uda.features.frontends import FrontEnd

AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")


def find_recordings(paths: Iterable[str | Path]) -> list[Path]:
    """The wav/flac files named, and those under the folders named (recursively), in sorted order.

    A path that does not exist is kept, so that loading it reports it with the other bad files."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def recording_features(path: str | Path, front_end: FrontEnd) -> tuple[np.ndarray, tuple[str, ...]]:
    """float16 (frames, channels) features of one file and the conversions applied (AudioProblem if bad)."""
    signal, conversions = load_audio(path, front_end.sample_rate, front_end.min_duration_s)
    return _features(signal, front_end), conversions


def waveform_features(
    waveform: np.ndarray, sample_rate: int, front_end: FrontEnd, name: str = "<waveform>"
) -> np.ndarray:
    """float16 features of samples in memory: (samples,) or (samples, channels), any sample rate."""
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1:
        raise AudioProblem(name, f"expected (samples,) or (samples, channels), got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise AudioProblem(name, "contains NaN/inf samples")
    if sample_rate != front_end.sample_rate and len(samples):
        samples = librosa.resample(
            samples, orig_sr=sample_rate, target_sr=front_end.sample_rate, res_type="soxr_hq"
        )
    if len(samples) / front_end.sample_rate < front_end.min_duration_s or not samples.any():
        raise AudioProblem(name, f"shorter than {front_end.min_duration_s:.2f} s or silent")
    return _features(samples, front_end)


def _features(signal: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    with threadpool_limits(1):  # prepare's threading, hence prepare's bytes
        return front_end.extract(signal).astype(np.float16)


def select_channels(features: np.ndarray, front_end: FrontEnd, blocks: Sequence[str]) -> np.ndarray:
    """The channels of the named feature blocks, in stacking order (as the data module selects them)."""
    slices = front_end.slices()
    return features[:, np.concatenate([np.arange(front_end.n_channels)[slices[name]] for name in blocks])]

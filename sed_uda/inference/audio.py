"""Recordings to classify: find them, load and check them as `prepare` does, and extract their features.

Loading is `sed_uda.corpus.audio.load_audio` (the same checks and conversions as the cache builder) and
features come from the checkpoint's front end with one BLAS thread and float16 storage, as
`prepare` writes them, so a recording classified from its file gets exactly the frames its cache has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from sed_uda.corpus.audio import AudioProblem, load_audio, prepare_signal
from sed_uda.features.frontends import FrontEnd

FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "WAV": (".wav",),
    "FLAC": (".flac",),
    "MP3": (".mp3",),
    "OGG": (".ogg", ".oga", ".opus"),
    "AIFF": (".aif", ".aiff"),
    "AU": (".au", ".snd"),
    "CAF": (".caf",),
    "W64": (".w64",),
    "RF64": (".rf64",),
}
"""File name endings of the common audio formats, by their libsndfile name."""
AUDIO_SUFFIXES: tuple[str, ...] = tuple(
    sorted(suffix for name in sf.available_formats() for suffix in FORMAT_SUFFIXES.get(name, ()))
)
"""Suffixes of the files searched for in folders: the common formats the loader (libsndfile) reads."""


def find_recordings(paths: Iterable[str | Path]) -> tuple[list[Path], Counter[str]]:
    """The files named, and the audio files under the folders named (recursively), in sorted order, and
    a count of the other files found in those folders by suffix (they are left out).

    A path that does not exist is kept, so that loading it reports it with the other bad files."""
    found: list[Path] = []
    ignored: Counter[str] = Counter()
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(path)
            continue
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.suffix.lower() in AUDIO_SUFFIXES:
                found.append(file)
            else:
                ignored[file.suffix.lower() or "(no suffix)"] += 1
    return list(dict.fromkeys(found)), ignored


def recording_features(path: str | Path, front_end: FrontEnd) -> tuple[np.ndarray, tuple[str, ...]]:
    """float16 (frames, channels) features of one file and the conversions applied (AudioProblem if bad)."""
    signal, conversions = load_audio(path, front_end.sample_rate, front_end.min_duration_s)
    return _features(signal, front_end), conversions


def waveform_features(
    waveform: np.ndarray, sample_rate: int, front_end: FrontEnd, name: str = "<waveform>"
) -> np.ndarray:
    """float16 features of samples in memory at any sample rate: (samples,), (samples, channels) or
    channels first, (channels, samples), as torchaudio returns them (the shorter axis is the channels)."""
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    elif samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T
    if samples.ndim != 2:
        raise AudioProblem(
            name, f"expected (samples,), (samples, channels) or (channels, samples): {samples.shape}"
        )
    signal, _ = prepare_signal(samples, sample_rate, front_end.sample_rate, front_end.min_duration_s, name)
    return _features(signal, front_end)


def _features(signal: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    with threadpool_limits(1):  # prepare's threading, hence prepare's bytes
        return front_end.extract(signal).astype(np.float16)


def select_channels(features: np.ndarray, front_end: FrontEnd, blocks: Sequence[str]) -> np.ndarray:
    """The channels of the named feature blocks, in stacking order (as the data module selects them)."""
    slices = front_end.slices()
    return features[:, np.concatenate([np.arange(front_end.n_channels)[slices[name]] for name in blocks])]

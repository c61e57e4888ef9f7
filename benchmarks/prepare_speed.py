"""How fast `sed-uda prepare` is, measured in one run on generated ESD-shaped clips.

Prints: the speedup of the shared-STFT extractor over four independent librosa calls on the same
clips; prepare throughput (clips/s) with 1 and 2 worker processes on a fresh cache; the cost of the
reuse check (hashing every file); and the cache size per hour of audio.

    .venv/bin/python benchmarks/prepare_speed.py [--clips 300] [--seconds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from sed_uda.corpus.layout import EMOTION_FOLDERS, EMOTIONS, SAMPLE_RATE, speaker_ids, utterance_number
from sed_uda.features.cache import prepare_cache
from sed_uda.features.config import FeatureConfig
from sed_uda.features.extract import extract_features
from sed_uda.features.store import FEATURES


def speechlike(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced glide with harmonics, syllable-rate amplitude and breath noise."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = rng.uniform(100, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (0.2 * voiced + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def write_clips(root: Path, n_clips: int, seconds: float) -> list[np.ndarray]:
    """`n_clips` 16 kHz wavs in ESD's flat layout (one speaker per language), and their samples."""
    rng = np.random.default_rng(0)
    speakers = speaker_ids("en", 1) + speaker_ids("zh", 1)
    clips = []
    for k in range(n_clips):
        speaker, emotion = speakers[k % 2], EMOTIONS[(k // 2) % len(EMOTIONS)]
        folder = root / speaker / EMOTION_FOLDERS[emotion]
        folder.mkdir(parents=True, exist_ok=True)
        clip = speechlike(seconds * rng.uniform(0.7, 1.3), rng)
        number = utterance_number(emotion, k // (2 * len(EMOTIONS)))
        sf.write(folder / f"{speaker}_{number:06d}.wav", clip, SAMPLE_RATE, subtype="PCM_16")
        clips.append(clip)
    return clips


def four_librosa_calls(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The same features from independent librosa calls: three STFTs, filterbanks rebuilt each time."""
    common = {"sr": config.sample_rate, "n_fft": config.n_fft, "hop_length": config.hop_length}
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=config.n_fft, hop_length=config.hop_length)
    mfcc = librosa.feature.mfcc(y=y, n_mfcc=config.n_mfcc, n_mels=config.n_mels, **common)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, n_mels=config.n_mels, **common))
    contrast = librosa.feature.spectral_contrast(
        y=y, n_bands=config.n_contrast_bands, fmin=config.contrast_fmin, **common
    )
    return np.concatenate([zcr, mfcc, mel, contrast]).T


def best_time(function: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of `repeats` runs, in seconds (the least disturbed by other load on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def timed_prepare(root: Path, cache_dir: Path, workers: int) -> float:
    """Seconds for a fresh `prepare_cache` of `root`."""
    start = time.perf_counter()
    prepare_cache(root, cache_dir, workers=workers)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0, help="mean clip length")
    args = parser.parse_args()
    config = FeatureConfig()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        clips = write_clips(root, args.clips, args.seconds)
        audio_s = sum(len(clip) for clip in clips) / SAMPLE_RATE
        print(f"{args.clips} clips, {audio_s:.0f} s of audio, feature config {config}")

        extract_features(clips[0], config)  # build the cached filterbanks outside the timing
        shared = best_time(lambda: [extract_features(clip, config) for clip in clips])
        separate = best_time(lambda: [four_librosa_calls(clip, config) for clip in clips])
        print(f"extraction: shared STFT {shared:.2f} s, four librosa calls {separate:.2f} s, ", end="")
        print(f"speedup x{separate / shared:.2f}")

        tiny = Path(tmp) / "tiny"
        write_clips(tiny, 2, args.seconds)
        for workers in (1, 2):
            startup = timed_prepare(
                tiny, Path(tmp) / f"tiny_w{workers}", workers
            )  # fixed cost: pool, imports
            cache_dir = Path(tmp) / f"cache_w{workers}"
            elapsed = timed_prepare(root, cache_dir, workers)
            print(
                f"prepare, workers={workers}: {elapsed:.2f} s, {args.clips / elapsed:.1f} clips/s "
                f"({args.clips / max(elapsed - startup, 1e-9):.1f} clips/s without the {startup:.2f} s "
                "fixed cost of a 2-clip prepare)"
            )

        start = time.perf_counter()
        cache = prepare_cache(root, cache_dir, workers=1)  # unchanged: hash every file, then reuse
        reuse_s = time.perf_counter() - start
        corpus_mb = sum(path.stat().st_size for path in root.rglob("*.wav")) / 1e6
        print(
            f"reuse check (hash {corpus_mb:.1f} MB of wav): {reuse_s:.3f} s, {corpus_mb / reuse_s:.0f} MB/s"
        )
        size_mb = (cache_dir / FEATURES).stat().st_size / 1e6
        print(f"cache: {size_mb:.1f} MB features for {cache.meta['hours']:.3f} h = ", end="")
        print(f"{size_mb / cache.meta['hours']:.0f} MB per hour of audio")


if __name__ == "__main__":
    main()

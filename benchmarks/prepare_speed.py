"""How fast `sed-uda prepare` is per front end, measured in one run on generated ESD-shaped clips.

Prints: the speedup of the shared-STFT librosa front end over four independent librosa calls on the
same clips; for every front end named (configs/frontend/ names or YAML files), prepare throughput
(clips/s) with 1 and 2 worker processes on a fresh cache and the cache size per hour of audio; then the
cost of the reuse check (hashing every file). `--device cuda` runs the front ends that can use a GPU
(torch, ssl) there, in one process (workers do not apply to them then).

    .venv/bin/python benchmarks/prepare_speed.py [--clips 300] [--seconds 3] \
        [--front-ends librosa torch egemaps egemaps_functionals] [--device cpu]
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
from sed_uda.features.frontends import FrontEnd
from sed_uda.features.frontends.choose import choose_front_end
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.store import FEATURES, read_meta


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


def four_librosa_calls(y: np.ndarray, config: LibrosaFrames) -> np.ndarray:
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


def timed_prepare(root: Path, cache_dir: Path, workers: int, front_end: FrontEnd, device: str) -> float:
    """Seconds for a fresh `prepare_cache` of `root`."""
    start = time.perf_counter()
    prepare_cache(root, cache_dir, workers=workers, front_end=front_end, device=device)
    return time.perf_counter() - start


def front_end_speed(tmp: Path, root: Path, n_clips: int, seconds: float, name: str, device: str) -> None:
    """Print prepare's clips/s with 1 and 2 workers (one run on the device) and the cache's MB per hour."""
    front_end = choose_front_end(name)
    tiny = tmp / "tiny"
    if not tiny.exists():
        write_clips(tiny, 2, seconds)
    worker_counts = (1,) if device != "cpu" else (1, 2)
    for workers in worker_counts:
        # fixed cost of a 2-clip prepare: pool start, imports, loading a model
        startup = timed_prepare(tiny, tmp / f"tiny_{name}_w{workers}", workers, front_end, device)
        cache_dir = tmp / f"cache_{name}_w{workers}"
        elapsed = timed_prepare(root, cache_dir, workers, front_end, device)
        print(
            f"{name} ({device}), workers={workers}: {elapsed:.2f} s, {n_clips / elapsed:.1f} clips/s "
            f"({n_clips / max(elapsed - startup, 1e-9):.1f} clips/s without the {startup:.2f} s "
            "fixed cost of a 2-clip prepare)"
        )
    hours = read_meta(cache_dir)["hours"]
    size_mb = (cache_dir / FEATURES).stat().st_size / 1e6
    print(f"{name} cache: {size_mb:.1f} MB features, {size_mb / hours:.0f} MB per hour of audio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0, help="mean clip length")
    parser.add_argument(
        "--front-ends", nargs="+", default=["librosa", "torch", "egemaps", "egemaps_functionals"]
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (for the torch and ssl front ends)")
    args = parser.parse_args()
    config = LibrosaFrames()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        clips = write_clips(root, args.clips, args.seconds)
        audio_s = sum(len(clip) for clip in clips) / SAMPLE_RATE
        print(f"{args.clips} clips, {audio_s:.0f} s of audio")

        config.extract(clips[0])  # build the cached filterbanks outside the timing
        shared = best_time(lambda: [config.extract(clip) for clip in clips])
        separate = best_time(lambda: [four_librosa_calls(clip, config) for clip in clips])
        print(
            f"librosa extraction: shared STFT {shared:.2f} s, four librosa calls {separate:.2f} s, ", end=""
        )
        print(f"speedup x{separate / shared:.2f}")

        for name in args.front_ends:
            front_end = choose_front_end(name)
            device = args.device if front_end.runs_on_device else "cpu"
            front_end_speed(Path(tmp), root, args.clips, args.seconds, name, device)

        first = args.front_ends[0]
        start = time.perf_counter()  # an unchanged corpus: hash every file, then reuse the cache
        prepare_cache(root, Path(tmp) / f"cache_{first}_w1", workers=1, front_end=choose_front_end(first))
        reuse_s = time.perf_counter() - start
        corpus_mb = sum(path.stat().st_size for path in root.rglob("*.wav")) / 1e6
        print(
            f"reuse check (hash {corpus_mb:.1f} MB of wav): {reuse_s:.3f} s, {corpus_mb / reuse_s:.0f} MB/s"
        )


if __name__ == "__main__":
    main()

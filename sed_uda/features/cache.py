"""Build a corpus's feature cache (`sed-uda prepare`): check, extract in parallel, write atomically, resume.

The run is: index the corpus; hash every file (one read) and reuse the cache when neither the corpus nor
the feature config changed; otherwise check every file before extracting anything, extract in resumable
shards under `<cache>/.partial/`, and replace the cache files only once all of them are written, with
meta.json last. A cache is therefore either the old complete one, the new complete one, or (between two
renames) one without meta.json that never loads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import xxhash
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from threadpoolctl import threadpool_limits

from sed_uda.corpus.audio import AudioProblem, load_audio
from sed_uda.corpus.esd import COLUMNS, corpus_gaps, index_corpus, read_synth_marker
from sed_uda.corpus.layout import EMOTIONS, LANGUAGES, SPLITS, speaker_ids
from sed_uda.errors import BadArgument, UserError
from sed_uda.features.frontends import FrontEnd
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.store import (
    CACHE_FORMAT,
    FEATURES,
    MANIFEST,
    META,
    OFFSETS,
    SKIPPED,
    CacheError,
    FeatureCache,
    load_cache,
    read_meta,
)
from sed_uda.workers import worker_pool

SHARD_SIZE = 256
"""Utterances per resumable shard: a killed run loses at most the shard it was filling."""
PARTIAL = ".partial"
FILE_HASH = "file_hash"
"""Manifest and skipped.csv column: xxh3-64 of the wav's bytes, to tell which files changed."""


class PrepareError(UserError, RuntimeError):
    """The corpus cannot be turned into a cache as it is; the message lists every file and the fix."""


def config_hash(front_end: FrontEnd) -> str:
    """Fingerprint of everything that decides the feature values: the front end's class and init_args,
    its blocks, the versions of what computes them, and the cache format."""
    recipe = {
        "front_end": front_end.config(),
        "blocks": front_end.blocks,
        "versions": front_end.versions(),
        "format": CACHE_FORMAT,
    }
    return xxhash.xxh3_64_hexdigest(json.dumps(recipe, sort_keys=True).encode())


def corpus_hash(manifest: pd.DataFrame) -> str:
    """Fingerprint of the used files: relative path and byte hash of each, in manifest order."""
    digest = xxhash.xxh3_128()
    for path, file_hash in zip(manifest["path"], manifest[FILE_HASH], strict=True):
        digest.update(f"{path}\0{file_hash}\n".encode())
    return digest.hexdigest()


def _hash_file(path: Path) -> str:
    """xxh3-64 of a file's bytes ("" when it cannot be read; the audio check then says why).

    Runs in-process: it is bound by disk reads, and the reuse check should not pay for a pool.
    """
    digest = xxhash.xxh3_64()
    try:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def _check_file(path: Path, front_end: FrontEnd) -> tuple[int, tuple[str, ...], str]:
    """(samples after conversion, conversions applied, problem or "") of one wav."""
    try:
        signal, conversions = load_audio(path, front_end.sample_rate, front_end.min_duration_s)
    except AudioProblem as problem:
        return 0, (), problem.reason
    return len(signal), conversions, ""


def _extract_files(paths: list[Path], front_end: FrontEnd, device: str) -> list[np.ndarray]:
    """float16 (frames, channels) features of some wavs (one, or a front end's batch).

    float16 keeps ~3 significant digits: ample for dB-scale log-mel, MFCC and contrast (steps below
    0.5 dB at |values| < 1024) and for standardised model states. zcr is k / n_fft, which float16 holds
    exactly when n_fft is a power of two up to 2048 (the default 1024).
    """
    signals = [load_audio(path, front_end.sample_rate, front_end.min_duration_s)[0] for path in paths]
    return [array.astype(np.float16) for array in front_end.extract_batch(signals, device)]


def _one_blas_thread() -> None:
    """Worker initializer: load the numeric libraries, then cap their thread pools at one thread."""
    import librosa  # noqa: F401 - loads numpy/scipy's BLAS and FFT so the cap reaches them

    threadpool_limits(1)


@contextmanager
def _worker_pool(workers: int) -> Iterator[Executor | None]:
    """A process pool of `workers` (None for 1: run in-process); pending work is cancelled on error.

    Workers ignore Ctrl-C and exit with this process (`sed_uda.workers`). Each worker's BLAS runs one
    thread: with a pool of processes, more threads only oversubscribe the cores (4,000 clips on 2 cores:
    18.2 s with 2 workers x 2 BLAS threads, 6.7 s with 1 thread each).
    """
    if workers == 1:
        with threadpool_limits(1):  # the same BLAS threading as a worker, so the same bytes
            yield None
        return
    pool = worker_pool(workers, initializer=_one_blas_thread)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _progress_map(
    pool: Executor | None,
    function: Callable,
    items: list,
    description: str,
    console: Console,
    total: int | None = None,
) -> Iterator:
    """Results of `function` over `items` in order, in the pool (or in-process), with a progress bar.

    With `total` (the number of files when each item is a batch of them), each result is a list that is
    yielded element by element and moves the bar by its length."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=len(items) if total is None else total)
        if pool is None:
            results: Iterable = map(function, items)
        else:
            results = pool.map(function, items, chunksize=max(1, min(16, len(items) // 64)))
        for result in results:
            if total is None:
                progress.advance(task)
                yield result
            else:
                progress.advance(task, len(result))
                yield from result


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` through a temporary file in the same folder, fsync it and rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a full disk or Ctrl-C leaves no half-written file behind


def _csv_writer(frame: pd.DataFrame) -> Callable[[BinaryIO], object]:
    return lambda file: file.write(frame.to_csv(index=False).encode("utf-8"))


def _bad_files_error(root: Path, cache_dir: Path, bad: pd.DataFrame, total: int) -> PrepareError:
    listing = "\n  ".join(
        f"{root / path}: {reason}" for path, reason in zip(bad["path"], bad["reason"], strict=True)
    )
    return PrepareError(
        f"{len(bad)} of {total} audio files under {root} are unusable:\n  {listing}\n"
        "Fix or remove these files, or run again with --skip-bad to leave them out "
        f"(they are then listed in {cache_dir / SKIPPED})."
    )


def _stale_reason(
    cache_dir: Path, root: Path, index: pd.DataFrame, front_end: FrontEnd, skip_bad: bool
) -> str | None:
    """Why the cache must be (re)built, or None when the existing one matches corpus and config."""
    if not (cache_dir / META).is_file():
        return "building the feature cache"
    try:
        meta = read_meta(cache_dir)
        old = load_cache(cache_dir, mmap=True).manifest
    except CacheError as error:
        return f"rebuilding: the existing cache is unusable ({error})"
    if meta.get("format") != CACHE_FORMAT or FILE_HASH not in old.columns:
        return "rebuilding: cache format changed"
    if meta.get("feature_config_hash") != config_hash(front_end):
        old_name = meta.get("front_end", {}).get("class_path", "?").rpartition(".")[2]
        return f"rebuilding: front end changed ({old_name} -> {front_end.name}, its config or versions)"
    skipped = pd.DataFrame(columns=["path", "reason", FILE_HASH])
    if (cache_dir / SKIPPED).is_file():
        skipped = pd.read_csv(cache_dir / SKIPPED, dtype=str, keep_default_na=False)
    before = dict(zip(old["path"], old[FILE_HASH], strict=True)) | dict(
        zip(skipped["path"], skipped[FILE_HASH], strict=True)
    )
    now = dict(zip(index["path"], index[FILE_HASH], strict=True))
    added, removed = len(now.keys() - before.keys()), len(before.keys() - now.keys())
    modified = sum(before[path] != file_hash for path, file_hash in now.items() if path in before)
    if added or removed or modified:
        return f"rebuilding: corpus changed: {added} added, {removed} removed, {modified} modified files"
    used = index[~index["path"].isin(skipped["path"])].reset_index(drop=True)
    if not used[list(COLUMNS)].equals(old[list(COLUMNS)]):
        return "rebuilding: corpus index changed (transcripts, labels or splits)"
    if len(skipped) and not skip_bad:
        raise _bad_files_error(root, cache_dir, skipped, len(index))
    return None


def _check_corpus(
    pool: Executor | None,
    root: Path,
    cache_dir: Path,
    index: pd.DataFrame,
    front_end: FrontEnd,
    skip_bad: bool,
    console: Console,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(usable rows with duration_s, skipped rows with reason); PrepareError on bad files unless skip_bad."""
    paths = [root / path for path in index["path"]]
    checks = list(
        _progress_map(pool, partial(_check_file, front_end=front_end), paths, "checking audio", console)
    )
    samples, conversions, problems = (list(column) for column in zip(*checks, strict=True))
    bad = np.array([problem != "" for problem in problems])
    skipped = index.loc[bad, ["path", FILE_HASH]].assign(reason=np.array(problems, dtype=object)[bad])
    skipped = skipped[["path", "reason", FILE_HASH]].reset_index(drop=True)
    if bad.any() and not skip_bad:
        raise _bad_files_error(root, cache_dir, skipped, len(index))
    if bad.all():
        raise PrepareError(
            f"all {len(index)} audio files under {root} are unusable (first: {root / skipped['path'][0]}: "
            f"{skipped['reason'][0]}); check that the corpus copy is complete."
        )
    if bad.any():
        console.print(f"skipped {bad.sum()} unusable files (listed in {cache_dir / SKIPPED})", markup=False)
    converted = Counter(
        step for steps, is_bad in zip(conversions, bad, strict=True) if not is_bad for step in steps
    )
    if converted:
        steps = ", ".join(
            f"{step} ({count} file{'s' * (count > 1)})" for step, count in sorted(converted.items())
        )
        console.print(f"converted to {front_end.sample_rate} Hz mono: {steps}", markup=False)
    usable = index.loc[~bad].assign(duration_s=np.array(samples)[~bad] / front_end.sample_rate)
    return usable.reset_index(drop=True), skipped


def _summary_table(manifest: pd.DataFrame) -> Table:
    """Utterances per language x emotion x split; every emotion is listed, so a missing one shows as 0."""
    table = Table("language", "emotion", *SPLITS, "total", "hours", title="utterances in the cache")
    counts = manifest.groupby(["language", "emotion", "split"]).size()
    hours = manifest.groupby(["language", "emotion"])["duration_s"].sum() / 3600
    for language in sorted(manifest["language"].unique()):
        for emotion in EMOTIONS:
            per_split = [int(counts.get((language, emotion, split), 0)) for split in SPLITS]
            total, duration = str(sum(per_split)), f"{hours.get((language, emotion), 0.0):.3g}"
            table.add_row(language, emotion, *map(str, per_split), total, duration)
        table.add_section()
    totals = [str(int((manifest["split"] == split).sum())) for split in SPLITS]
    table.add_row("all", "", *totals, str(len(manifest)), f"{manifest['duration_s'].sum() / 3600:.3g}")
    return table


def _shard_key(shard: pd.DataFrame, config_digest: str) -> str:
    digest = xxhash.xxh3_128(config_digest.encode())
    for path, file_hash in zip(shard["path"], shard[FILE_HASH], strict=True):
        digest.update(f"{path}\0{file_hash}\n".encode())
    return digest.hexdigest()


def _extract_shards(
    pool: Executor | None,
    root: Path,
    manifest: pd.DataFrame,
    front_end: FrontEnd,
    device: str,
    partial_dir: Path,
    shard_size: int,
    console: Console,
) -> list[Path]:
    """Shard files covering `manifest` in order; finished shards of an earlier run are reused.

    Files go to the front end in batches of its `batch_size` (in the pool when that is 1 and the device
    is the CPU; in this process otherwise, where one model serves every batch)."""
    partial_dir.mkdir(parents=True, exist_ok=True)
    digest = config_hash(front_end)
    shards = [manifest.iloc[start : start + shard_size] for start in range(0, len(manifest), shard_size)]
    files = [partial_dir / f"{_shard_key(shard, digest)}.npz" for shard in shards]
    todo = [(shard, file) for shard, file in zip(shards, files, strict=True) if not file.is_file()]
    if len(todo) < len(shards):
        console.print(f"resuming: {len(shards) - len(todo)} of {len(shards)} shards already extracted")
    paths = [root / path for shard, _ in todo for path in shard["path"]]
    size = front_end.batch_size
    batches = [paths[start : start + size] for start in range(0, len(paths), size)]
    if size > 1 or device != "cpu":
        pool = None
    extract = partial(_extract_files, front_end=front_end, device=device)
    results = _progress_map(pool, extract, batches, f"extracting {front_end.name}", console, len(paths))
    with closing(results):
        for shard, file in todo:
            _atomic_write(file, partial(_save_shard, arrays=[next(results) for _ in range(len(shard))]))
    return files


def _save_shard(file: BinaryIO, arrays: list[np.ndarray]) -> None:
    """One shard: its utterances' frames back to back, and their lengths."""
    lengths = np.array([len(array) for array in arrays], dtype=np.int64)
    np.savez(file, features=np.concatenate(arrays), lengths=lengths)


def _write_features(file: BinaryIO, shards: list[Path], frames: int, channels: int) -> None:
    """Stream the shards into one .npy, holding one shard in memory at a time."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(file, header | {"shape": (frames, channels)})
    for shard_file in shards:
        with np.load(shard_file) as shard:
            file.write(np.ascontiguousarray(shard["features"], dtype=np.float16).tobytes())


def _install(cache_dir: Path, outputs: dict[str, Callable[[BinaryIO], object]], meta: dict) -> None:
    """Write every file to a temporary name, then swap them in with meta.json last.

    Until the swap the old cache stays complete; during it there is no meta.json, so no reader
    ever sees a mix of old and new files.
    """
    staged = {name: cache_dir / f"{name}.new" for name in outputs}
    try:
        for name, write in outputs.items():
            _atomic_write(staged[name], write)
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    (cache_dir / META).unlink(missing_ok=True)
    (cache_dir / SKIPPED).unlink(missing_ok=True)
    for name, tmp in staged.items():
        os.replace(tmp, cache_dir / name)
    _atomic_write(cache_dir / META, lambda f: f.write(json.dumps(meta, indent=2).encode("utf-8")))


def _record_root(cache_dir: Path, root: Path) -> None:
    """Point meta.json at `root` when an unchanged corpus was moved (or reached by another path)."""
    meta = read_meta(cache_dir)
    if meta["corpus_root"] != str(root):
        meta["corpus_root"] = str(root)
        _atomic_write(cache_dir / META, lambda f: f.write(json.dumps(meta, indent=2).encode("utf-8")))


def _meta(root: Path, manifest: pd.DataFrame, skipped: pd.DataFrame, front_end: FrontEnd) -> dict:
    return {
        "format": CACHE_FORMAT,
        "front_end": front_end.config(),
        "front_end_versions": front_end.versions(),
        "feature_config_hash": config_hash(front_end),
        "blocks": front_end.blocks,
        "channels": front_end.n_channels,
        "corpus_root": str(root),
        "corpus_hash": corpus_hash(manifest),
        "counts": {
            "utterances": len(manifest),
            "skipped": len(skipped),
            "per_language": manifest["language"].value_counts().sort_index().to_dict(),
            "per_split": manifest["split"].value_counts().reindex(SPLITS, fill_value=0).to_dict(),
            "per_emotion": manifest["emotion"].value_counts().reindex(EMOTIONS, fill_value=0).to_dict(),
        },
        "frames": int(manifest["n_frames"].sum()),
        "hours": float(manifest["duration_s"].sum() / 3600),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _check_device(front_end: FrontEnd, device: str) -> None:
    """BadArgument when `device` is not the CPU and either the front end or the machine cannot use it."""
    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise BadArgument(f"--device {device}: use cpu or cuda (cuda:N for one of several GPUs)")
    if not front_end.runs_on_device:
        raise BadArgument(
            f"--device {device}: the {front_end.name} front end computes on the CPU only; "
            "drop --device, or choose --front-end torch or ssl"
        )
    import torch

    if not torch.cuda.is_available():
        raise BadArgument(f"--device {device}: no CUDA GPU is visible on this machine; use --device cpu")


def _expected_speakers(root: Path) -> list[str] | None:
    """The speakers `synth` wrote for a bundled corpus; None (ESD's 20) for any other."""
    marker = read_synth_marker(root)
    if marker is None:
        return None
    return [s for language in LANGUAGES for s in speaker_ids(language, marker["speakers_per_language"])]


def _check_writable(cache_dir: Path) -> None:
    """Create the cache folder and write a probe file there, so a read-only folder fails before the work."""
    if cache_dir.exists() and not cache_dir.is_dir():
        raise PrepareError(f"{cache_dir}: is a file, not a folder; choose another --cache folder")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=cache_dir):
        pass


def prepare_cache(
    root: str | Path,
    cache_dir: str | Path,
    workers: int = 1,
    skip_bad: bool = False,
    front_end: FrontEnd = LibrosaFrames(),  # noqa: B008 (frozen, so a shared default is safe)
    shard_size: int = SHARD_SIZE,
    device: str = "cpu",
) -> FeatureCache:
    """Build (or reuse) the feature cache of an ESD-shaped corpus and return it, memory-mapped.

    Every wav is hashed; when `cache_dir` already holds a cache of the same files and front end (class,
    init_args, library versions) it is reused as is. Otherwise every file is checked before any
    extraction: unusable files (empty, bad header, too short, silent, NaN) raise one PrepareError that
    lists them all, unless
    `skip_bad`, which leaves them out and lists them in `<cache>/skipped.csv`. Other sample rates are
    resampled and multi-channel files down-mixed. Features are extracted in `workers` processes in
    shards of `shard_size` utterances kept under `<cache>/.partial/`, so a killed run resumes where it
    stopped; the cache files are replaced only when the new ones are complete, meta.json last.

    Raises CorpusError when the folder is not an ESD-shaped corpus, PrepareError for unusable audio.
    """
    if workers < 1:
        raise BadArgument(f"workers={workers}: need at least 1 process")
    front_end.check()
    _check_device(front_end, device)
    config_hash(front_end)  # a missing optional library or model folder fails here, before any work
    root, cache_dir = Path(root).resolve(), Path(cache_dir)
    console = Console(highlight=False, soft_wrap=True)  # long paths stay copyable
    index = index_corpus(root)
    for gap in corpus_gaps(index, _expected_speakers(root)):
        console.print(f"warning: {root}: {gap}", markup=False)
    _check_writable(cache_dir)
    paths = [root / path for path in index["path"]]
    index[FILE_HASH] = list(_progress_map(None, _hash_file, paths, "hashing corpus", console))
    reason = _stale_reason(cache_dir, root, index, front_end, skip_bad)
    if reason is None:
        shutil.rmtree(cache_dir / PARTIAL, ignore_errors=True)
        _record_root(cache_dir, root)
        cache = load_cache(cache_dir, mmap=True)
        console.print(f"cache up to date: {cache_dir} ({len(cache)} utterances)", markup=False)
        return cache
    console.print(reason, markup=False)
    with _worker_pool(workers) as pool:
        manifest, skipped = _check_corpus(pool, root, cache_dir, index, front_end, skip_bad, console)
        console.print(_summary_table(manifest))
        shard_files = _extract_shards(
            pool, root, manifest, front_end, device, cache_dir / PARTIAL, shard_size, console
        )
    lengths = np.concatenate([np.load(file)["lengths"] for file in shard_files])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    manifest = manifest.assign(n_frames=lengths)[[*COLUMNS, "duration_s", "n_frames", FILE_HASH]]
    outputs: dict[str, Callable[[BinaryIO], object]] = {
        FEATURES: partial(
            _write_features, shards=shard_files, frames=int(offsets[-1]), channels=front_end.n_channels
        ),
        OFFSETS: partial(np.save, arr=offsets),
        MANIFEST: _csv_writer(manifest),
    }
    if len(skipped):
        outputs[SKIPPED] = _csv_writer(skipped)
    _install(cache_dir, outputs, _meta(root, manifest, skipped, front_end))
    shutil.rmtree(cache_dir / PARTIAL)
    cache = load_cache(cache_dir, mmap=True)
    hours = cache.meta["hours"]
    console.print(f"wrote {cache_dir}: {len(cache)} utterances, {hours:.3g} h of audio", markup=False)
    return cache


def load_split(
    cache_dir: str | Path, language: str | None = None, split: str | None = None
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Manifest rows and float32 (frames, channels) features of a language and/or split, for notebooks."""
    cache = load_cache(cache_dir, mmap=True)
    rows = cache.select(language=language, split=split)
    arrays = [np.asarray(cache.utterance(row), dtype=np.float32) for row in rows]
    return cache.manifest.iloc[rows].reset_index(drop=True), arrays

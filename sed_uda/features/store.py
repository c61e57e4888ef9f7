"""The on-disk feature cache format and its in-memory view.

A complete cache directory holds:
  manifest.csv   one row per usable utterance, in cache order (corpus columns plus duration_s,
                 n_frames and file_hash, the xxh3-64 of the wav that tells a changed file)
  features.npy   all frames of all utterances stacked: (total_frames, channels) float16
  offsets.npy    (n_utterances + 1,) int64; utterance i is features[offsets[i]:offsets[i+1]]
  meta.json      the front end's config (class_path + init_args), library versions and blocks, the
                 corpus fingerprint and counts; written last, so a cache without it is incomplete and
                 never loads
  skipped.csv    only with `prepare --skip-bad`: path, reason and file_hash of each unusable wav
Variable-length utterances are stored back to back, so no frame is padding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sed_uda.corpus.layout import EMOTIONS, LANGUAGES, SPLITS
from sed_uda.errors import BadArgument, UserError
from sed_uda.features.frontends import FrontEnd, FrontEndError, recorded, recorded_blocks

MANIFEST = "manifest.csv"
FEATURES = "features.npy"
OFFSETS = "offsets.npy"
META = "meta.json"
SKIPPED = "skipped.csv"
CACHE_FORMAT = 2
"""2: meta.json records the front end (format 1 caches were the librosa frames' `feature_config`)."""

_TEXT_COLUMNS = {name: str for name in ("utterance_id", "path", "speaker", "text", "file_hash")}
"""Manifest columns read as text, so ids like 0011, digit-only transcripts and hashes stay intact."""


class CacheError(UserError, RuntimeError):
    """A feature cache is missing, incomplete or inconsistent; the message says what to run."""


REBUILD = "delete the cache folder and run `sed-uda prepare` again"
VALUES: dict[str, tuple[str, ...]] = {"language": LANGUAGES, "split": SPLITS, "emotion": EMOTIONS}
"""The values each label column of a manifest may hold."""


def check_value(column: str, value: str | None) -> None:
    """BadArgument listing the valid values when `value` (None: any) is not one of `column`'s."""
    if value is not None and value not in VALUES[column]:
        raise BadArgument(f"{column}={value!r} is not one of {', '.join(VALUES[column])}")


@dataclass
class FeatureCache:
    """Features of every utterance of a corpus, held in memory."""

    manifest: pd.DataFrame
    features: np.ndarray
    offsets: np.ndarray
    front_end: FrontEnd
    meta: dict

    @property
    def blocks(self) -> dict[str, int]:
        """Channels of each block of the frames, in stacking order, as meta.json lists them."""
        return recorded_blocks(self.meta)

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per utterance."""
        return np.diff(self.offsets)

    def select(self, language: str | None = None, split: str | None = None) -> np.ndarray:
        """Row indices of the utterances of a language and/or split (BadArgument for unknown values)."""
        check_value("language", language)
        check_value("split", split)
        keep = np.ones(len(self.manifest), dtype=bool)
        if language is not None:
            keep &= (self.manifest["language"] == language).to_numpy()
        if split is not None:
            keep &= (self.manifest["split"] == split).to_numpy()
        return np.flatnonzero(keep)

    def labels(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Emotion label indices (positions in EMOTIONS) of the given rows."""
        emotions = self.manifest["emotion"] if rows is None else self.manifest["emotion"].iloc[rows]
        return emotions.map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy(dtype=np.int64)

    def utterance(self, row: int) -> np.ndarray:
        """The (frames, channels) features of one utterance."""
        return self.features[self.offsets[row] : self.offsets[row + 1]]


def read_meta(cache_dir: str | Path) -> dict:
    """The meta.json of a complete cache; CacheError if there is none or it cannot be read."""
    path = Path(cache_dir) / META
    if not path.is_file():
        raise CacheError(
            f"{Path(cache_dir)} is not a complete feature cache (no {META}). "
            "Build it with: sed-uda prepare --root CORPUS_DIR --cache "
            f"{Path(cache_dir)}"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CacheError(f"{path}: unreadable ({error}); {REBUILD}") from error
    if not isinstance(meta, dict) or not any(
        isinstance(meta.get(k), dict) for k in ("front_end", "feature_config")
    ):
        raise CacheError(f"{path}: not a feature cache's meta.json (no front_end); {REBUILD}")
    return meta


def _read_manifest(path: Path) -> pd.DataFrame:
    """manifest.csv with its label columns checked, so no row is silently dropped by a later filter."""
    try:
        manifest = pd.read_csv(path, dtype=_TEXT_COLUMNS, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise CacheError(f"{path}: unreadable ({error}); {REBUILD}") from error
    missing = [column for column in (*VALUES, "path") if column not in manifest.columns]
    if missing:
        raise CacheError(f"{path}: has no column {', '.join(missing)}; {REBUILD}")
    for column, allowed in VALUES.items():
        unknown = sorted(set(manifest[column]) - set(allowed))
        if unknown:
            raise CacheError(
                f"{path}: unknown {column} value(s) {', '.join(map(repr, unknown))} "
                f"(valid: {', '.join(allowed)}); fix the file, or {REBUILD}"
            )
    return manifest


def _load_array(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as error:
        raise CacheError(f"{path}: truncated or damaged ({error}); {REBUILD}") from error


def load_cache(cache_dir: str | Path, mmap: bool = False) -> FeatureCache:
    """Load a complete cache into memory (or memory-map the frames with `mmap=True`).

    CacheError, naming the file, when a file is unreadable or the files disagree with each other.
    """
    cache_dir = Path(cache_dir)
    meta = read_meta(cache_dir)
    manifest = _read_manifest(cache_dir / MANIFEST)
    features = _load_array(cache_dir / FEATURES, mmap)
    offsets = _load_array(cache_dir / OFFSETS, mmap=False)
    try:
        front_end = recorded(meta)
    except FrontEndError as error:
        raise CacheError(f"{cache_dir / META}: {error}") from error
    if len(offsets) != len(manifest) + 1 or offsets[-1] != len(features) or features.ndim != 2:
        raise CacheError(
            f"{cache_dir}: manifest, offsets and features disagree "
            f"({len(manifest)} rows, {len(offsets)} offsets, {len(features)} frames); {REBUILD}"
        )
    held = {
        "frames": len(features),
        "channels": features.shape[1],
        "utterances": len(manifest),
        "front end channels": features.shape[1],
    }
    stated = {
        "frames": meta.get("frames"),
        "channels": meta.get("channels"),
        "utterances": (meta.get("counts") or {}).get("utterances"),
        "front end channels": sum(recorded_blocks(meta).values()),
    }
    wrong = [
        f"{key} {stated[key]} (files: {held[key]})" for key in held if stated[key] not in (None, held[key])
    ]
    if wrong:
        raise CacheError(f"{cache_dir / META} contradicts the arrays: {', '.join(wrong)}; {REBUILD}")
    return FeatureCache(manifest, features, offsets, front_end, meta)

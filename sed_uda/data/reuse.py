"""Normalised inputs kept between runs of one process, so a grid reads and standardises a cache once.

A grid run in-process (the demo, `sed-uda grid` without `--jobs`, `sed-uda study`) fits one data module
after another on the same cache and settings; reading ~200 MB of frames and standardising them took
longer than training the utterance-statistics encoder. The last result is kept, keyed by everything it
depends on: the cache files' identity (path, size, modification time: a rewritten manifest is a new
key), the selected blocks, the normalisation and the language it is computed from. One entry at a time
bounds memory at one copy of the frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

CACHE_FILES = ("meta.json", "manifest.csv", "features.npy", "offsets.npy")

T = TypeVar("T")
_kept: dict[Hashable, object] = {}
_lock = threading.Lock()


def files_identity(cache_dir: Path) -> tuple:
    """(resolved path, and per cache file: size and modification time in ns); a changed file changes it."""
    cache_dir = Path(cache_dir).resolve()
    stats = [(cache_dir / name).stat() for name in CACHE_FILES if (cache_dir / name).exists()]
    return (str(cache_dir), *((s.st_size, s.st_mtime_ns) for s in stats))


def reused(key: Hashable, make: Callable[[], T]) -> T:
    """`make()`'s result for `key`: computed once, then handed back until another key replaces it.

    Callers must treat the result as read-only (it is shared by every data module with the same key).
    Thread-safe: a second thread asking for the same key waits for the first one's result."""
    with _lock:
        if key not in _kept:
            value = make()
            _kept.clear()
            _kept[key] = value
        return _kept[key]  # type: ignore[return-value]

"""Prediction-time standardisation, matching what the model saw in training.

- global: the checkpoint's stored source-train mean/std, applied as the data module applies them;
- per group (speaker mode): each group's own mean/std, pooled over the group's recordings being
  classified, by the data module's own `standardise`. Groups are speaker folders (`parent-folder`),
  or single files (`file`). The model was trained with statistics over *all* of a speaker's audio, so
  the fewer recordings a group holds, the noisier its statistics (README, "Use a trained model").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sed_uda.data.normalization import standardise

SPEAKER_SOURCES: tuple[str, ...] = ("parent-folder", "file")


def speaker_groups(files: Sequence[Path], speaker_from: str) -> np.ndarray:
    """Group index of each file: its folder (`parent-folder`) or itself (`file`)."""
    if speaker_from not in SPEAKER_SOURCES:
        raise ValueError(f"speaker_from must be one of {list(SPEAKER_SOURCES)}, got {speaker_from!r}")
    keys = [str(Path(f).absolute().parent) if speaker_from == "parent-folder" else str(f) for f in files]
    return pd.factorize(pd.Series(keys))[0]


def stack(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Utterances back to back (the cache layout): frames and offsets."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
    return np.concatenate(arrays), offsets


def standardise_global(frames: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """float16 (x - mean) / std in float32 arithmetic, as the data module standardises its frames."""
    return ((frames.astype(np.float32) - mean.astype(np.float32)) / std.astype(np.float32)).astype(np.float16)


def standardise_groups(frames: np.ndarray, offsets: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """float16 frames with every group standardised by its own statistics (a copy)."""
    out = frames.copy()
    members = [np.flatnonzero(groups == g) for g in range(int(groups.max()) + 1)]
    standardise(out, offsets, groups, members)
    return out

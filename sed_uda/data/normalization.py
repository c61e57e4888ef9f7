"""Per-channel standardisation of stacked utterance frames, with statistics pooled over chosen utterances.

Utterances are put in groups (one group for global normalisation, one per speaker for speaker
normalisation, one per utterance for utterance normalisation); each group's mean/std comes from the frames
of the utterances named for it (for a speaker: their train and val audio, never the test split), and every
utterance of the group is standardised with them. Statistics are exact (population std) and stable:
per-utterance moments in float64, pooled with Chan's parallel formula. Frames are processed in chunks
so memory stays at one copy of the features whatever the corpus size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

MIN_STD = 1e-5
"""Floor on a channel's std, so a constant channel becomes zeros rather than inf/nan."""

CHUNK_FRAMES = 1 << 16


@dataclass(frozen=True)
class ChannelStats:
    """Mean and std of each group (rows) and channel (columns)."""

    mean: np.ndarray
    std: np.ndarray


def _row_chunks(offsets: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive utterance ranges [a, b) of at most CHUNK_FRAMES frames (or one longer utterance)."""
    a, n = 0, len(offsets) - 1
    while a < n:
        b = int(np.searchsorted(offsets, offsets[a] + CHUNK_FRAMES, side="right")) - 1
        b = min(max(b, a + 1), n)
        yield a, b
        a = b


def row_moments(frames: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per utterance: frame count (n,), channel means (n, channels) and sums of squared deviations."""
    counts = np.diff(offsets)
    if (counts <= 0).any():
        raise ValueError("every utterance must have at least one frame")
    sums = np.empty((len(counts), frames.shape[1]))
    squares = np.empty_like(sums)
    # float16 frames (the cache's) are squared exactly in float32 (11 significant bits -> 22 < 24), half
    # the memory traffic of float64; every sum accumulates in float64 either way.
    exact = np.float32 if frames.dtype == np.float16 else np.float64
    for a, b in _row_chunks(offsets):
        block = frames[offsets[a] : offsets[b]].astype(exact)
        starts = offsets[a:b] - offsets[a]
        sums[a:b] = np.add.reduceat(block, starts, axis=0, dtype=np.float64)
        squares[a:b] = np.add.reduceat(np.square(block, out=block), starts, axis=0, dtype=np.float64)
    means = sums / counts[:, None]
    return counts, means, np.maximum(squares - sums * means, 0.0)


def pooled_stats(frames: np.ndarray, offsets: np.ndarray, members: Sequence[np.ndarray]) -> ChannelStats:
    """Mean/std per channel of the frames of the utterances `members[g]`, for each group g."""
    counts, means, deviations = row_moments(frames, offsets)
    mean = np.empty((len(members), frames.shape[1]))
    std = np.empty_like(mean)
    for group, rows in enumerate(members):
        if len(rows) == 0:
            raise ValueError(f"normalisation group {group} has no utterances to compute statistics from")
        n = counts[rows][:, None]
        mean[group] = (n * means[rows]).sum(axis=0) / n.sum()
        spread = (deviations[rows] + n * (means[rows] - mean[group]) ** 2).sum(axis=0)
        std[group] = np.sqrt(spread / n.sum())
    return ChannelStats(mean, np.maximum(std, MIN_STD))


def standardise(
    frames: np.ndarray, offsets: np.ndarray, groups: np.ndarray, members: Sequence[np.ndarray]
) -> ChannelStats:
    """Standardise `frames` in place: utterance i becomes (x - mean[g]) / std[g] with g = groups[i],
    where group g's statistics are pooled over the utterances `members[g]`. Returns the statistics."""
    stats = pooled_stats(frames, offsets, members)
    apply_stats(frames, offsets, groups, stats)
    return stats


def apply_stats(frames: np.ndarray, offsets: np.ndarray, groups: np.ndarray, stats: ChannelStats) -> None:
    """Standardise `frames` in place with given statistics: utterance i by row groups[i] of `stats`
    (statistics stored in a checkpoint or enrolled from other recordings, at prediction time)."""
    mean, scale = stats.mean.astype(np.float32), (1.0 / stats.std).astype(np.float32)
    counts = np.diff(offsets)
    for a, b in _row_chunks(offsets):
        group = np.repeat(groups[a:b], counts[a:b])
        block = frames[offsets[a] : offsets[b]].astype(np.float32)
        block -= mean[group]
        block *= scale[group]
        frames[offsets[a] : offsets[b]] = block

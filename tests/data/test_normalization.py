"""Standardisation: pooled statistics match a direct computation and only the named utterances count."""

from __future__ import annotations

import numpy as np
import pytest

from sed_uda.data import normalization
from sed_uda.data.normalization import pooled_stats, standardise


def utterances(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float16 frames (5 channels) whose level and spread differ per utterance, with offsets."""
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(rng.normal(0, 5, 5), rng.uniform(0.5, 3, 5), size=(n, 5)) for n in sizes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.concatenate(blocks).astype(np.float16), offsets


def frames_of(frames: np.ndarray, offsets: np.ndarray, rows: list[int]) -> np.ndarray:
    return np.concatenate([frames[offsets[r] : offsets[r + 1]] for r in rows]).astype(np.float64)


def test_pooled_stats_equal_the_mean_and_std_of_the_members_frames() -> None:
    frames, offsets = utterances([4, 9, 1, 30, 7])
    members = [np.array([0, 3]), np.array([1, 2, 4])]
    stats = pooled_stats(frames, offsets, members)
    for group, rows in enumerate(members):
        reference = frames_of(frames, offsets, list(rows))
        np.testing.assert_allclose(stats.mean[group], reference.mean(axis=0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(stats.std[group], reference.std(axis=0), rtol=1e-9)


def test_float16_frames_give_the_statistics_of_their_values_in_float64_exactly() -> None:
    """The cache's float16 frames take a faster path (squares in float32); nothing may change."""
    frames, offsets = utterances([40, 300, 3, 2000, 77], seed=4)
    members = [np.array([0, 3]), np.array([1, 2, 4])]
    fast, reference = (
        pooled_stats(frames, offsets, members),
        pooled_stats(frames.astype(np.float64), offsets, members),
    )
    np.testing.assert_array_equal(fast.mean, reference.mean)
    np.testing.assert_array_equal(fast.std, reference.std)


def test_statistics_ignore_utterances_outside_the_members() -> None:
    frames, offsets = utterances([5, 8, 6, 12])
    before = pooled_stats(frames, offsets, [np.array([0, 1])])
    frames[offsets[2] :] = 100  # the other utterances change completely
    after = pooled_stats(frames, offsets, [np.array([0, 1])])
    np.testing.assert_array_equal(before.mean, after.mean)
    np.testing.assert_array_equal(before.std, after.std)


def test_standardise_gives_each_group_zero_mean_unit_std(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(normalization, "CHUNK_FRAMES", 16)  # several chunks, utterances across their ends
    frames, offsets = utterances([20, 7, 3, 18, 11, 9], seed=2)
    groups = np.array([0, 1, 0, 1, 2, 2])
    standardise(frames, offsets, groups, [np.flatnonzero(groups == g) for g in range(3)])
    for g in range(3):
        values = frames_of(frames, offsets, list(np.flatnonzero(groups == g)))
        np.testing.assert_allclose(values.mean(axis=0), 0, atol=2e-3)
        np.testing.assert_allclose(values.std(axis=0), 1, atol=2e-3)


def test_standardise_applies_the_members_statistics_to_every_row_of_the_group() -> None:
    frames, offsets = utterances([10, 12, 8])
    raw = frames.astype(np.float64)
    stats = standardise(frames, offsets, np.zeros(3, dtype=np.int64), [np.array([0, 1])])
    expected = (raw - stats.mean[0]) / stats.std[0]
    np.testing.assert_allclose(frames.astype(np.float64), expected, atol=1e-2, rtol=1e-2)


def test_a_constant_channel_becomes_zeros_not_nan() -> None:
    frames, offsets = utterances([6, 4])
    frames[:, 2] = 7
    standardise(frames, offsets, np.zeros(2, dtype=np.int64), [np.array([0, 1])])
    assert np.all(frames[:, 2] == 0)
    assert np.isfinite(frames).all()


def test_a_group_without_utterances_is_a_clear_error() -> None:
    frames, offsets = utterances([6, 4])
    with pytest.raises(ValueError, match="group 1 has no utterances"):
        pooled_stats(frames, offsets, [np.array([0, 1]), np.array([], dtype=np.int64)])

"""Batch gathering: crops stay inside their utterance, padding and lengths, streams and eval batches."""

from __future__ import annotations

import inspect

import pytest
import torch

from sed_uda.data.crops import (
    CyclingPermutation,
    EvalBatches,
    LabelledRandomCrops,
    RandomCrops,
    StreamLoader,
    centre_crops,
    random_crops,
)

SIZES = [3, 10, 16, 17, 40, 1, 25]


def coded_frames(sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose channel 0 is 1 + the utterance's row and channel 1 the frame's position in it."""
    offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()])
    rows = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    position = torch.arange(int(offsets[-1])) - offsets[rows]
    return torch.stack([rows + 1.0, position.float(), torch.ones(len(rows))], dim=1), offsets


def assert_crops_of(x: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor, sizes: list[int]) -> None:
    """Each row holds `lengths` consecutive frames of its own utterance, then exact zeros."""
    for i, row in enumerate(rows.tolist()):
        n = int(lengths[i])
        assert torch.all(x[i, 0, :n] == row + 1)
        start = int(x[i, 1, 0])
        assert torch.equal(x[i, 1, :n], torch.arange(start, start + n, dtype=torch.float32))
        assert start >= 0 and start + n <= sizes[row]
        assert torch.all(x[i, :, n:] == 0)


def test_random_crops_stay_within_each_utterance_and_pad_to_the_longest_crop() -> None:
    frames, offsets = coded_frames(SIZES)
    rows = torch.tensor([0, 1, 2, 3, 4, 5, 6, 4, 4, 3])
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(20):
        x, lengths = random_crops(frames, offsets, rows, 16, generator)
        assert x.shape == (len(rows), 3, 16) and x.dtype == torch.float32 and x.is_contiguous()
        assert torch.equal(lengths, torch.tensor(SIZES)[rows].clamp(max=16))
        assert_crops_of(x, lengths, rows, SIZES)
        starts.add(int(x[4, 1, 0]))
    assert len(starts) > 1, "crops of a long utterance should start at different places"
    short_rows = torch.tensor([0, 1, 0])  # whole utterances of 3 and 10 frames: no padding to 16
    x, lengths = random_crops(frames, offsets, short_rows, 16, generator)
    assert x.shape == (3, 3, 10) and lengths.tolist() == [3, 10, 3]
    assert_crops_of(x, lengths, short_rows, SIZES)


def test_centre_crops_pad_to_the_longest_row_and_centre_long_ones() -> None:
    frames, offsets = coded_frames(SIZES)
    rows = torch.tensor([0, 4, 1])
    x, lengths = centre_crops(frames, offsets, rows, max_frames=30)
    assert x.shape == (3, 3, 30)
    assert lengths.tolist() == [3, 30, 10]
    assert int(x[1, 1, 0]) == (40 - 30) // 2
    assert_crops_of(x, lengths, rows, SIZES)
    short, _ = centre_crops(frames, offsets, torch.tensor([0, 1]), max_frames=30)
    assert short.shape[2] == 10


def test_cycling_permutation_covers_every_position_once_per_pass_and_reshuffles() -> None:
    order = CyclingPermutation(7, torch.Generator().manual_seed(1))
    drawn = torch.cat([order.take(3) for _ in range(14)])  # 42 = 6 passes, batches span pass ends
    passes = drawn.view(6, 7)
    assert all(sorted(p.tolist()) == list(range(7)) for p in passes)
    assert len({tuple(p.tolist()) for p in passes}) > 1


def make_crops(labels: torch.Tensor | None = None, seed: int = 0, steps: int = 5) -> RandomCrops:
    frames, offsets = coded_frames(SIZES)
    rows = torch.tensor([1, 3, 4, 6])
    args = {"crop_frames": 8, "batch_size": 3, "steps": steps, "seed": seed}
    if labels is None:
        return RandomCrops(frames, offsets, rows, **args)
    return LabelledRandomCrops(frames, offsets, rows, labels, **args)


def test_unlabelled_crops_hold_no_labels_and_yield_exactly_steps_batches() -> None:
    crops = make_crops()
    assert "labels" not in inspect.signature(RandomCrops).parameters
    assert not hasattr(crops, "labels")
    batches = list(crops)
    assert len(batches) == len(crops) == 5
    assert all(set(batch) == {"x", "lengths"} for batch in batches)


def test_labelled_crops_carry_each_rows_label() -> None:
    labels = torch.tensor([10, 30, 40, 60])  # label of rows 1, 3, 4, 6 = 10 * row
    for batch in make_crops(labels, steps=4):
        assert set(batch) == {"x", "lengths", "y"}
        assert torch.equal(batch["y"], (batch["x"][:, 0, 0].long() - 1) * 10)


def batches_of(crops: RandomCrops) -> list[torch.Tensor]:
    return [batch["x"] for batch in crops]


def test_streams_are_reproducible_per_seed_and_continue_across_epochs() -> None:
    first, again = make_crops(seed=3), make_crops(seed=3)
    epoch = batches_of(first)
    assert all(torch.equal(a, b) for a, b in zip(epoch, batches_of(again), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(epoch, batches_of(first), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(epoch, batches_of(make_crops(seed=4)), strict=True))


def test_each_distributed_rank_draws_its_own_reproducible_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    def stream_on_rank(rank: int) -> list[torch.Tensor]:
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: rank)
        return batches_of(make_crops(seed=0))

    rank0, rank1 = stream_on_rank(0), stream_on_rank(1)
    assert all(torch.equal(a, b) for a, b in zip(rank1, stream_on_rank(1), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(rank0, rank1, strict=True))


def test_eval_batches_cover_every_row_once_sorted_by_length_with_labels() -> None:
    frames, offsets = coded_frames(SIZES)
    rows = torch.tensor([6, 0, 4, 2, 5, 1])
    labels = rows * 10
    batches = EvalBatches(frames, offsets, rows, max_frames=20, batch_size=4, labels=labels, with_rows=True)
    seen, previous = [], 0
    for batch in (batches[i] for i in range(len(batches))):
        assert set(batch) == {"x", "lengths", "y", "row"}
        assert torch.equal(batch["y"], batch["row"] * 10)
        assert torch.equal(batch["lengths"], torch.tensor(SIZES)[batch["row"]].clamp(max=20))
        assert_crops_of(batch["x"], batch["lengths"], batch["row"], SIZES)
        assert int(batch["lengths"].min()) >= previous
        previous = int(batch["lengths"].max())
        seen += batch["row"].tolist()
    assert sorted(seen) == sorted(rows.tolist())
    unlabelled = EvalBatches(frames, offsets, rows, max_frames=20, batch_size=4)
    assert set(unlabelled[0]) == {"x", "lengths"}


def test_eval_batches_are_gathered_once_in_the_frames_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    frames, offsets = coded_frames(SIZES)
    half = EvalBatches(frames.half(), offsets, torch.tensor([4, 0, 2]), max_frames=20, batch_size=2)
    gathered = []
    real = EvalBatches._gather
    monkeypatch.setattr(EvalBatches, "_gather", lambda self, i: gathered.append(i) or real(self, i))
    first = [half[i] for i in range(len(half))]
    again = [half[i] for i in range(len(half))]  # a second epoch
    assert gathered == [0, 1]
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert all(batch["x"].dtype == torch.float16 for batch in first)
    assert_crops_of(first[0]["x"].float(), first[0]["lengths"], torch.tensor([0, 2]), SIZES)


def test_a_restored_stream_continues_exactly_where_the_saved_one_stood() -> None:
    saved, fresh = make_crops(seed=2), make_crops(seed=2)
    batches_of(saved)  # one epoch
    fresh.load_state_dict(saved.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(batches_of(saved), batches_of(fresh), strict=True))


def test_a_stream_restored_inside_an_epoch_yields_the_rest_of_it() -> None:
    reference, interrupted, restored = make_crops(seed=5), make_crops(seed=5), make_crops(seed=5)
    epoch = batches_of(reference)
    iterator = iter(interrupted)
    next(iterator), next(iterator)
    restored.load_state_dict(interrupted.state_dict())
    rest = batches_of(restored)
    assert len(rest) == len(epoch) - 2
    assert all(torch.equal(a, b) for a, b in zip(epoch[2:], rest, strict=True))
    assert len(batches_of(restored)) == len(epoch)  # the next epoch is whole again


def test_stream_loader_is_stateful_for_lightning() -> None:
    from lightning.fabric.utilities.types import _Stateful

    loader = StreamLoader(make_crops())
    assert isinstance(loader, _Stateful)
    assert set(loader.state_dict()) == {"generator", "drawn", "order", "next"}

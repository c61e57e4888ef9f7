"""Batches gathered from one in-memory frames tensor, and the datasets that serve them.

Every utterance's frames lie back to back in one (total_frames, channels) tensor with offsets (the cache
layout), so a batch is one advanced-indexing gather of (batch, width) frame indices: no per-utterance
Python loop. Training streams draw random crops of at most `crop_frames` frames from a cycling random
permutation; evaluation batches hold whole utterances (centre-cropped beyond a maximum). Either is
padded to the longest row of its batch, so whole-utterance training (a `crop_frames` above the longest
utterance) costs no more than the utterances are long. Rows shorter than the width are zero-padded and
`lengths` says how many frames are real. Training streams are checkpointed (`state_dict` /
`load_state_dict`, served to Lightning by `StreamLoader`), so a resumed run draws exactly the crops an
uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset

Batch = dict[str, Tensor]


def gather(
    frames: Tensor, offsets: Tensor, rows: Tensor, starts: Tensor, lengths: Tensor, width: int
) -> Tensor:
    """(batch, channels, width) float32 where row i holds `lengths[i]` frames of utterance `rows[i]`
    from frame `starts[i]` on, then zeros."""
    steps = torch.arange(width)
    last = (lengths - 1).clamp(min=0)
    index = (offsets[rows] + starts)[:, None] + torch.minimum(steps[None, :], last[:, None])
    x = torch.empty(len(rows), frames.shape[1], width, dtype=torch.float32)
    x.copy_(frames[index].transpose(1, 2))
    return x.mul_(steps[None, None, :] < lengths[:, None, None])


def utterance_sizes(offsets: Tensor, rows: Tensor) -> Tensor:
    """Frames of each of the given utterances."""
    return offsets[rows + 1] - offsets[rows]


def random_crops(
    frames: Tensor, offsets: Tensor, rows: Tensor, crop_frames: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """A uniformly placed crop of `crop_frames` frames per row (the whole row if shorter), padded to
    the longest crop of the batch."""
    sizes = utterance_sizes(offsets, rows)
    lengths = sizes.clamp(max=crop_frames)
    room = (sizes - lengths + 1).to(torch.float64)
    starts = (torch.rand(len(rows), generator=generator, dtype=torch.float64) * room).long()
    return gather(frames, offsets, rows, starts, lengths, int(lengths.max())), lengths


def centre_crops(frames: Tensor, offsets: Tensor, rows: Tensor, max_frames: int) -> tuple[Tensor, Tensor]:
    """Whole rows (centred `max_frames` crop of longer ones), padded to the longest row of the batch."""
    sizes = utterance_sizes(offsets, rows)
    lengths = sizes.clamp(max=max_frames)
    x = gather(frames, offsets, rows, (sizes - lengths) // 2, lengths, int(lengths.max()))
    return x, lengths


def process_rank() -> int:
    """This process's rank under torch.distributed (0 when it is not initialised)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def stream_generator(seed: int, stream: int) -> torch.Generator:
    """A generator for one random stream of this process, distinct for every (seed, rank, stream).

    SeedSequence mixes the three numbers, so seed 1 on rank 0 and seed 0 on rank 1 do not collide
    as `seed + rank` would."""
    state = np.random.SeedSequence([seed, process_rank(), stream]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class CyclingPermutation:
    """Positions 0..n-1 in random order, reshuffled at every pass; `take` continues across passes."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.long)
        self._next = 0

    def take(self, count: int) -> Tensor:
        """The next `count` positions (a batch may span the end of one pass and the start of the next)."""
        parts = []
        while count > 0:
            if self._next == len(self._order):
                self._order, self._next = torch.randperm(self.n, generator=self.generator), 0
            part = self._order[self._next : self._next + count]
            parts.append(part)
            self._next += len(part)
            count -= len(part)
        return torch.cat(parts)

    def state_dict(self) -> dict[str, object]:
        """The current pass's order and the position in it (the generator is saved by its owner)."""
        return {"order": self._order.clone(), "next": self._next}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self._order, self._next = state["order"].clone(), int(state["next"])


class RandomCrops(IterableDataset):
    """`steps` batches {"x", "lengths"} of random crops of the utterances `rows`, without labels
    (plus "speaker" when `speakers[i]`, row i's speaker index, is given: metadata, not an emotion).

    It is built from frames, row indices and speakers only, so nothing that iterates it can reach a label.
    The random stream lives as long as the dataset: each epoch continues it (new crops, and the
    permutation cycles on), and it is drawn from `stream_generator(seed, stream)` on first use, when
    the distributed rank is known, so every rank draws its own reproducible stream. `state_dict` holds
    the generator state, the permutation and the batches drawn this epoch, so a stream restored with
    `load_state_dict` continues exactly where the saved one stood.
    """

    def __init__(
        self,
        frames: Tensor,
        offsets: Tensor,
        rows: Tensor,
        crop_frames: int,
        batch_size: int,
        steps: int,
        seed: int,
        stream: int = 0,
        speakers: Tensor | None = None,
    ) -> None:
        self.frames = frames
        self.offsets = offsets
        self.rows = rows
        self.speakers = speakers
        self.crop_frames = crop_frames
        self.batch_size = batch_size
        self.steps = steps
        self.seed = seed
        self.stream = stream
        self._generator: torch.Generator | None = None
        self._order: CyclingPermutation | None = None
        self._drawn = 0
        """Batches drawn in the current epoch."""
        self._resume_at = 0
        """Batches of the current epoch already drawn before `load_state_dict`; the next epoch skips them."""

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Batch]:
        self._start()
        first, self._resume_at = self._resume_at, 0
        for index in range(first, self.steps):
            batch = self._batch(self._order.take(self.batch_size))
            self._drawn = index + 1
            yield batch

    def _start(self) -> None:
        if self._generator is None:
            self._generator = stream_generator(self.seed, self.stream)
            self._order = CyclingPermutation(len(self.rows), self._generator)

    def state_dict(self) -> dict[str, object]:
        """Generator state, permutation position and batches drawn this epoch (all tensors and ints)."""
        self._start()
        return {"generator": self._generator.get_state(), "drawn": self._drawn, **self._order.state_dict()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Continue the saved stream: the rest of its epoch if it stopped inside one, else a new epoch.

        Lightning prefetches one batch, so a checkpoint written inside an epoch (`every_n_train_steps`)
        holds a stream one batch ahead of training; the checkpoints `fit` writes are all at epoch ends,
        where the stream has drawn exactly `steps` batches.
        """
        self._start()
        self._generator.set_state(state["generator"])
        self._order.load_state_dict(state)
        self._drawn = int(state["drawn"])
        self._resume_at = self._drawn if self._drawn < self.steps else 0

    def _batch(self, picks: Tensor) -> Batch:
        x, lengths = random_crops(
            self.frames, self.offsets, self.rows[picks], self.crop_frames, self._generator
        )
        batch = {"x": x, "lengths": lengths}
        if self.speakers is not None:
            batch["speaker"] = self.speakers[picks]
        return batch


class LabelledRandomCrops(RandomCrops):
    """`RandomCrops` of labelled utterances: batches {"x", "lengths", "y"}; `labels[i]` is row i's."""

    def __init__(
        self,
        frames: Tensor,
        offsets: Tensor,
        rows: Tensor,
        labels: Tensor,
        crop_frames: int,
        batch_size: int,
        steps: int,
        seed: int,
        stream: int = 0,
        speakers: Tensor | None = None,
    ) -> None:
        super().__init__(frames, offsets, rows, crop_frames, batch_size, steps, seed, stream, speakers)
        self.labels = labels

    def _batch(self, picks: Tensor) -> Batch:
        return {**super()._batch(picks), "y": self.labels[picks]}


class StreamLoader(DataLoader):
    """The DataLoader of a training stream, stateful in Lightning's sense: the fit loop saves its
    `state_dict` in every checkpoint and restores it on resume (batches are built in-process)."""

    def __init__(self, dataset: RandomCrops) -> None:
        super().__init__(dataset, batch_size=None, shuffle=False, num_workers=0)

    def state_dict(self) -> dict[str, object]:
        return self.dataset.state_dict()

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.dataset.load_state_dict(state)


class EvalBatches(Dataset):
    """Fixed batches of whole utterances for evaluation: {"x", "lengths"} plus "y" when labels are
    given and "row" (the utterance's manifest row) when `with_rows`.

    Rows are sorted by (clipped length, row) before batching, so each batch pads little and the order
    is the same on every run. `sizes` (default: the rows' frame counts) are the lengths to sort by,
    for frames that stand for utterances of other lengths (pooled statistics: one frame each).
    """

    def __init__(
        self,
        frames: Tensor,
        offsets: Tensor,
        rows: Tensor,
        max_frames: int,
        batch_size: int,
        labels: Tensor | None = None,
        with_rows: bool = False,
        sizes: Tensor | None = None,
    ) -> None:
        self.frames = frames
        self.offsets = offsets
        self.rows = rows
        self.max_frames = max_frames
        self.labels = labels
        self.with_rows = with_rows
        sizes = (utterance_sizes(offsets, rows) if sizes is None else sizes).clamp(max=max_frames)
        order = torch.from_numpy(np.lexsort((rows.numpy(), sizes.numpy())))
        self._batches = list(torch.split(order, batch_size))
        self._built: dict[int, Batch] = {}

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int) -> Batch:
        """The batch, gathered on first use and kept (x in the frames' dtype, so float16 frames cost
        half): evaluation batches never change, so later epochs only read them."""
        if index not in self._built:
            self._built[index] = self._gather(index)
        return self._built[index]

    def _gather(self, index: int) -> Batch:
        picks = self._batches[index]
        rows = self.rows[picks]
        x, lengths = centre_crops(self.frames, self.offsets, rows, self.max_frames)
        batch = {"x": x.to(self.frames.dtype), "lengths": lengths}
        if self.labels is not None:
            batch["y"] = self.labels[picks]
        if self.with_rows:
            batch["row"] = rows
        return batch

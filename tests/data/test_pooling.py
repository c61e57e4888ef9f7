"""Pooled statistics: one definition, the same numbers whether the encoder pools a batch or the data
module pools each utterance once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.data.keys import LABELLED, UNLABELLED
from sed_uda.data.pooling import utterance_statistics
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.models.components.stats import StatsEncoder

CHANNELS = LibrosaFrames().n_channels


def test_utterance_statistics_are_mean_and_root_of_variance_plus_epsilon() -> None:
    rng = np.random.default_rng(0)
    sizes = [3, 7, 1, 12]
    frames = rng.normal(size=(sum(sizes), 4)).astype(np.float16)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rows = torch.tensor([3, 0, 2])
    pooled = utterance_statistics(torch.from_numpy(frames), torch.from_numpy(offsets), rows, max_frames=10)
    for out, row in zip(pooled.numpy(), rows.tolist(), strict=True):
        utterance = frames[offsets[row] : offsets[row + 1]].astype(np.float64)
        if len(utterance) > 10:  # the centred 10-frame crop: frames 1..10 of 12
            utterance = utterance[1:11]
        np.testing.assert_allclose(out[:4], utterance.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(out[4:], np.sqrt(utterance.var(axis=0) + 1e-5), atol=1e-5)


def _datamodule(cache: Path, pooled: bool, crop_frames: int = 64) -> CrossLingualDataModule:
    dm = CrossLingualDataModule(
        str(cache), crop_frames=crop_frames, batch_size=4, eval_batch_size=5, steps_per_epoch=5, pooled=pooled
    )
    dm.setup("fit")
    return dm


def test_pooled_batches_hold_each_utterances_statistics_in_the_same_order(random_cache: Path) -> None:
    frames_dm, pooled_dm = _datamodule(random_cache, False), _datamodule(random_cache, True)
    encoder = StatsEncoder(CHANNELS).eval()
    pairs = zip(frames_dm.train_dataloader(), pooled_dm.train_dataloader(), strict=True)
    for (framed, _, _), (pooled, _, _) in pairs:
        assert pooled[LABELLED]["x"].shape == (4, 2 * CHANNELS, 1)
        assert torch.equal(framed[LABELLED]["y"], pooled[LABELLED]["y"])  # the same utterances, in order
        for side in (LABELLED, UNLABELLED):
            with torch.no_grad():
                from_frames = encoder(framed[side]["x"], framed[side]["lengths"])
                from_pooled = encoder(pooled[side]["x"], pooled[side]["lengths"])
            torch.testing.assert_close(from_pooled, from_frames, atol=1e-5, rtol=1e-5)
    for framed, pooled in zip(frames_dm.val_dataloader(), pooled_dm.val_dataloader(), strict=True):
        for a, b in zip(framed, pooled, strict=True):
            assert torch.equal(a.get("y", torch.empty(0)), b.get("y", torch.empty(0)))
            with torch.no_grad():
                torch.testing.assert_close(
                    encoder(b["x"], b["lengths"]), encoder(a["x"], a["lengths"]), atol=1e-5, rtol=1e-5
                )


def test_training_crops_shorter_than_an_utterance_keep_frames(random_cache: Path) -> None:
    dm = _datamodule(random_cache, True, crop_frames=16)  # the random cache has utterances of 40 frames
    batch, _, _ = next(iter(dm.train_dataloader()))
    assert batch[LABELLED]["x"].shape[1] == CHANNELS

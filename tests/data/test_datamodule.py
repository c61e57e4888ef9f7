"""CrossLingualDataModule: the batch contract, which side is labelled, normalisation and errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sed_uda.data.crops import LabelledRandomCrops, RandomCrops
from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.data.keys import LABELLED, TEST_LOADERS, UNLABELLED, VAL_LOADERS
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.store import CacheError, load_cache

from .conftest import SPEAKERS, SPLIT_SIZES, write_cache

CHANNELS = LibrosaFrames().n_channels


def datamodule(cache: Path, stage: str | None = "fit", **kwargs: object) -> CrossLingualDataModule:
    args = {"crop_frames": 16, "batch_size": 4, "eval_batch_size": 5, **kwargs}
    dm = CrossLingualDataModule(str(cache), **args)
    if stage is not None:
        dm.setup(stage)
    return dm


def language_rows(cache: Path, language: str, split: str | None = None) -> np.ndarray:
    return load_cache(cache).select(language, split)


def test_training_batches_follow_the_contract_with_unlabelled_target(random_cache: Path) -> None:
    dm = datamodule(random_cache, steps_per_epoch=9)
    loader = dm.train_dataloader()
    batches = [batch for batch, _, _ in loader]
    assert len(batches) == len(loader) == 9  # > one pass of either side: both cycle
    for batch in batches:
        assert set(batch) == {LABELLED, UNLABELLED}
        assert set(batch[LABELLED]) == {"x", "lengths", "y", "speaker"}
        assert set(batch[UNLABELLED]) == {"x", "lengths", "speaker"}
        for side in batch.values():
            assert side["x"].shape == (4, CHANNELS, 16) and side["x"].dtype == torch.float32
            assert side["lengths"].dtype == torch.int64 and torch.all(side["lengths"] <= 16)


def test_training_rows_carry_their_speaker_and_no_speaker_is_shared_across_languages(
    random_cache: Path,
) -> None:
    """Speaker-adversarial methods read `speaker`: each row's own (its frames sit on its language's side
    of zero in the raw cache), the two languages' speakers numbered apart."""
    dm = datamodule(random_cache, normalization="none", steps_per_epoch=6)
    seen: dict[str, set[int]] = {LABELLED: set(), UNLABELLED: set()}
    for batch, _, _ in dm.train_dataloader():
        for side, sign in ((LABELLED, 1.0), (UNLABELLED, -1.0)):  # en (source) +4, zh (target) -4
            means = batch[side]["x"].sum((1, 2)) / (batch[side]["lengths"] * CHANNELS)
            assert torch.all(means * sign > 0)
            seen[side].update(batch[side]["speaker"].tolist())
    manifest = dm.manifest
    for side, language in ((LABELLED, "en"), (UNLABELLED, "zh")):
        rows = np.flatnonzero((manifest["language"] == language).to_numpy())
        assert seen[side] == set(dm.speaker_ids(rows).tolist())
        assert len(seen[side]) == manifest.loc[rows, "speaker"].nunique()
    assert not seen[LABELLED] & seen[UNLABELLED]


def test_unlabelled_side_is_built_without_labels(random_cache: Path) -> None:
    loaders = datamodule(random_cache).train_dataloader().iterables
    unlabelled = loaders[UNLABELLED].dataset
    assert type(unlabelled) is RandomCrops and not hasattr(unlabelled, "labels")
    assert isinstance(loaders[LABELLED].dataset, LabelledRandomCrops)


@pytest.mark.parametrize("labelled", ["source", "target"])
def test_no_target_train_label_is_ever_served_for_training(
    random_cache: Path, labelled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every label the data module looks up, for any loader, comes from rows other than target train,
    unless the target side is the labelled one (the upper bound), which then reads exactly those."""
    asked: list[int] = []
    real = CrossLingualDataModule.labels

    def recording(self: CrossLingualDataModule, rows: np.ndarray) -> torch.Tensor:
        asked.extend(np.asarray(rows).tolist())
        return real(self, rows)

    monkeypatch.setattr(CrossLingualDataModule, "labels", recording)
    dm = datamodule(random_cache, labelled=labelled, unlabelled_target=True, steps_per_epoch=3)
    target_train = set(dm.rows("zh", "train").tolist())
    for batch, _, _ in dm.train_dataloader():
        assert "y" not in batch[UNLABELLED]
    trained_on = set(asked)
    assert trained_on == set(dm.rows("zh" if labelled == "target" else "en", "train").tolist())
    asked.clear()
    for loader in dm.val_dataloader() + dm.test_dataloader():
        for _ in loader:
            pass
    assert not set(asked) & target_train  # evaluation scores target train without labels


@pytest.mark.parametrize(
    ("labelled", "unlabelled_target", "labelled_language"),
    [("source", False, "en"), ("target", False, "zh"), ("source", True, "en"), ("target", True, "zh")],
)
def test_each_side_comes_from_its_language(
    random_cache: Path, labelled: str, unlabelled_target: bool, labelled_language: str
) -> None:
    dm = datamodule(
        random_cache, labelled=labelled, unlabelled_target=unlabelled_target, normalization="none"
    )
    assert dm.labelled_language == labelled_language
    batches = [batch for batch, _, _ in dm.train_dataloader()]
    n_train = len(language_rows(random_cache, labelled_language, "train"))
    assert len(batches) == dm.train_steps == math.ceil(n_train / 4)
    for batch in batches:
        assert set(batch) == ({LABELLED, UNLABELLED} if unlabelled_target else {LABELLED})
        # the fixture draws English frames around +4 and Mandarin around -4
        means = batch[LABELLED]["x"].sum(dim=(1, 2)) / (batch[LABELLED]["lengths"] * CHANNELS)
        assert torch.all(torch.sign(means) == (1 if labelled_language == "en" else -1))
        if unlabelled_target:
            target = batch[UNLABELLED]["x"].sum(dim=(1, 2)) / (batch[UNLABELLED]["lengths"] * CHANNELS)
            assert torch.all(target < 0)


def test_num_channels_and_direction_are_known_before_setup(random_cache: Path) -> None:
    dm = datamodule(random_cache, stage=None, source="zh", target="en", features=["mel", "zcr"])
    assert dm.num_channels == 1 + LibrosaFrames().n_mels
    assert dm.direction == "zh2en"
    assert dm.frames is None


def test_feature_subset_picks_the_right_channels(random_cache: Path) -> None:
    dm = datamodule(random_cache, features=["contrast", "zcr"], normalization="none")
    cache = load_cache(random_cache)
    slices = cache.front_end.slices()
    expected = np.concatenate([cache.features[:, slices["zcr"]], cache.features[:, slices["contrast"]]], 1)
    assert dm.frames.shape == (len(cache.features), dm.num_channels)
    np.testing.assert_array_equal(dm.frames.numpy(), expected)


def test_global_normalisation_uses_source_train_frames_only(random_cache: Path) -> None:
    dm = datamodule(random_cache, labelled="target")
    cache = load_cache(random_cache)
    frames = dm.frames.double().numpy()
    source_train = np.concatenate([frames[slice(*cache.offsets[r : r + 2])] for r in dm.rows("en", "train")])
    raw_source = np.concatenate([cache.utterance(r) for r in dm.rows("en", "train")]).astype(np.float64)
    np.testing.assert_allclose(dm.normalization_stats.mean[0], raw_source.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(source_train.mean(axis=0), 0, atol=5e-3)
    np.testing.assert_allclose(source_train.std(axis=0), 1, atol=5e-3)
    target = np.concatenate([frames[slice(*cache.offsets[r : r + 2])] for r in dm.rows("zh", "train")])
    assert target.mean() < -1  # Mandarin frames sit far below the English statistics


def test_speaker_normalisation_standardises_each_speaker_by_their_train_and_val_audio(
    random_cache: Path,
) -> None:
    dm = datamodule(random_cache, normalization="speaker")
    frames, offsets, manifest = dm.frames.double().numpy(), dm.offsets.numpy(), dm.manifest
    for speaker in SPEAKERS:
        rows = np.flatnonzero((manifest["speaker"] == speaker) & (manifest["split"] != "test"))
        values = np.concatenate([frames[offsets[r] : offsets[r + 1]] for r in rows])
        np.testing.assert_allclose(values.mean(axis=0), 0, atol=5e-3)
        np.testing.assert_allclose(values.std(axis=0), 1, atol=5e-3)
    assert dm.speakers == list(SPEAKERS) and dm.state_dict()["normalization_stats"]["speakers"] == dm.speakers


def test_speaker_statistics_never_see_the_test_split(tmp_path: Path) -> None:
    random_cache = write_cache(tmp_path / "cache")
    first = datamodule(random_cache, normalization="speaker")
    before = first.normalization_stats
    cache = load_cache(random_cache)
    features = np.load(random_cache / "features.npy")
    for row in cache.select(split="test"):
        features[cache.offsets[row] : cache.offsets[row + 1]] = 50  # test audio changes completely
    np.save(random_cache / "features.npy", features)
    second = datamodule(random_cache, normalization="speaker")
    after = second.normalization_stats
    np.testing.assert_array_equal(before.mean, after.mean)
    np.testing.assert_array_equal(before.std, after.std)
    test_row = int(cache.select(split="test")[0])
    frames = slice(*cache.offsets[test_row : test_row + 2])
    assert not torch.equal(first.frames[frames], second.frames[frames])  # the new frames were read


def test_a_rewritten_manifest_is_read_again_by_the_next_data_module(tmp_path: Path) -> None:
    """Data modules of one process share a read of the cache (a grid reads it once), never a stale one."""
    random_cache = write_cache(tmp_path / "cache")
    rows = datamodule(random_cache).rows("en", "train")
    before = datamodule(random_cache).labels(rows)
    manifest = pd.read_csv(random_cache / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.loc[rows, "emotion"] = np.roll(manifest.loc[rows, "emotion"].to_numpy(), 1)
    manifest.to_csv(random_cache / "manifest.csv", index=False)
    after = datamodule(random_cache).labels(rows)
    assert torch.equal(after, before.roll(1))


def test_utterance_normalisation_standardises_each_utterance_alone(random_cache: Path) -> None:
    dm = datamodule(random_cache, normalization="utterance")
    frames, offsets = dm.frames.double().numpy(), dm.offsets.numpy()
    for row in range(0, len(offsets) - 1, 5):
        values = frames[offsets[row] : offsets[row + 1]]
        np.testing.assert_allclose(values.mean(axis=0), 0, atol=5e-3)
    assert dm.state_dict()["normalization_stats"] is None and dm.state_dict()["normalization"] == "utterance"


def eval_rows(loader: torch.utils.data.DataLoader) -> tuple[list[int], list[int]]:
    lengths, labels = [], []
    for batch in loader:
        lengths += batch["lengths"].tolist()
        labels += batch["y"].tolist() if "y" in batch else []
    return sorted(lengths), sorted(labels)


def test_eval_loaders_cover_every_row_of_their_split_once(random_cache: Path) -> None:
    dm = datamodule(random_cache, max_eval_frames=30)
    dm.setup("test")
    cache = load_cache(random_cache)
    expected = {  # (language, split, labelled) of each loader, in keys.VAL_LOADERS / TEST_LOADERS order
        "val": [("en", "val", True), ("zh", "val", True), ("zh", "train", False), ("zh", "test", True)],
        "test": [("en", "test", True), ("zh", "test", True)],
    }
    assert len(expected["val"]) == len(VAL_LOADERS) and len(expected["test"]) == len(TEST_LOADERS)
    for stage, loaders in [("val", dm.val_dataloader()), ("test", dm.test_dataloader())]:
        for loader, (language, split, labelled) in zip(loaders, expected[stage], strict=True):
            rows = cache.select(language, split)
            lengths, labels = eval_rows(loader)
            assert lengths == sorted(np.minimum(cache.lengths[rows], 30).tolist())
            assert labels == (sorted(cache.labels(rows).tolist()) if labelled else [])
            keys = {"x", "lengths", "y"} if labelled else {"x", "lengths"}
            assert all(set(batch) == keys for batch in loader)


def test_predict_loader_returns_every_row_with_its_frames(random_cache: Path) -> None:
    dm = datamodule(random_cache, stage="predict", max_eval_frames=1000)
    seen = []
    for batch in dm.predict_dataloader():
        assert set(batch) == {"x", "lengths", "row"}
        assert batch["x"].dtype == dm.frames.dtype == torch.float16  # evaluation keeps the cache's dtype
        for x, n, row in zip(batch["x"], batch["lengths"], batch["row"], strict=True):
            start = int(dm.offsets[row])
            assert torch.equal(x[:, :n], dm.frames[start : start + n].T)
            assert torch.all(x[:, n:] == 0)
        seen += batch["row"].tolist()
    assert sorted(seen) == list(range(len(dm.manifest)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "zh", "target": "zh"}, "both 'zh'"),
        ({"features": ["mel", "pitch"]}, "unknown: \\['pitch'\\]"),
        ({"features": []}, "features must be"),
        ({"batch_size": 0}, "batch_size must be a positive"),
        ({"labelled": "both"}, "labelled must be one of"),
    ],
)
def test_bad_arguments_are_clear_errors(random_cache: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrossLingualDataModule(str(random_cache), **kwargs)


def test_missing_cache_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="sed-uda prepare"):
        CrossLingualDataModule(str(tmp_path / "nowhere"))


def test_empty_split_of_a_language_is_a_clear_error(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", split_sizes={**SPLIT_SIZES, "test": 0})
    with pytest.raises(CacheError, match=f"no test utterances for language en in {cache}"):
        datamodule(cache, stage="fit")  # fit scores target test too (the marked test-oracle rule)

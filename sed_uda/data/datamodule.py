"""CrossLingualDataModule: paired source-labelled / target-unlabelled batches from a feature cache.

The selected feature channels of every utterance are held, normalised, in one contiguous float16
tensor (half the memory of float32, which matters for the full ESD cache held once per DDP rank;
frames were stored as float16 anyway) and every batch is cast to float32 as it is gathered.
Batch keys and the order of the evaluation loaders follow `sed_uda.data.keys`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sed_uda.compare import differences
from sed_uda.corpus.layout import EMOTIONS, LANGUAGES, SPLITS
from sed_uda.data.crops import EvalBatches, LabelledRandomCrops, RandomCrops, StreamLoader, utterance_sizes
from sed_uda.data.keys import LABELLED, UNLABELLED, direction_name
from sed_uda.data.normalization import ChannelStats, standardise
from sed_uda.data.pooling import utterance_statistics
from sed_uda.data.reuse import files_identity, reused
from sed_uda.errors import CheckpointMismatch
from sed_uda.features.frontends import FrontEnd, FrontEndError, block_slices, recorded, recorded_blocks
from sed_uda.features.store import CacheError, load_cache, read_meta

NORMALIZATIONS: tuple[str, ...] = ("global", "speaker", "utterance", "none")
STATISTICS_SPLITS: tuple[str, ...] = ("train", "val")
"""Splits whose audio gives a speaker's statistics: never the test split, which is only evaluated."""

STAGE_SPLITS: dict[str | None, tuple[str, ...]] = {
    "fit": ("train", "val", "test"),
    "validate": ("train", "val", "test"),
    "test": ("test",),
    "predict": (),
    None: SPLITS,
}
"""Splits each stage reads for both languages (validation also scores target train, unlabelled, and
target test, for the marked `target_test_oracle` selection rule)."""


@dataclass(frozen=True)
class _Loaded:
    """A cache's selected channels, normalised, with what was computed from them (shared, read-only)."""

    manifest: pd.DataFrame
    frames: Tensor
    offsets: Tensor
    stats: ChannelStats | None
    speakers: tuple[str, ...]
    pooled: dict[int, Tensor] = field(default_factory=dict)
    """Pooled statistics per evaluation crop length, filled by `statistics()`."""


class CrossLingualDataModule(LightningDataModule):
    """Source-labelled and target-unlabelled training batches plus evaluation loaders for one direction.

    Training yields `{"labelled": {"x", "lengths", "y", "speaker"}, "unlabelled": {"x", "lengths",
    "speaker"}}` with random `crop_frames` crops: labelled = source train (or target train for the
    target-supervised upper bound); unlabelled = target train, served (when `unlabelled_target`) by a
    dataset that never receives labels. The data module knows no method: the CLI turns
    `unlabelled_target` on when the model has adaptation losses. Evaluation uses whole utterances
    (centre crop beyond `max_eval_frames`).
    """

    def __init__(
        self,
        cache_dir: str = "data/cache",
        source: Literal["en", "zh"] = "en",
        target: Literal["en", "zh"] = "zh",
        labelled: Literal["source", "target"] = "source",
        unlabelled_target: bool = True,
        features: Sequence[str] | None = None,
        crop_frames: int = 128,
        max_eval_frames: int = 1024,
        normalization: Literal["global", "speaker", "utterance", "none"] = "global",
        batch_size: int = 64,
        eval_batch_size: int = 128,
        steps_per_epoch: int | None = None,
        seed: int = 0,
        pooled: bool = False,
    ) -> None:
        """
        Args:
            cache_dir: Feature cache written by `sed-uda prepare`.
            source: Language whose labels train the classifier.
            target: Language adapted to; its labels are used only for evaluation (and for training by
                the upper bound, `labelled: target`).
            labelled: Which language's train labels the model learns from: "source" (every UDA run)
                or "target" (the target-supervised upper bound).
            unlabelled_target: Serve an unlabelled target-train batch with every training batch (the
                CLI sets it from whether the model has adaptation losses).
            features: Blocks of the cache's front end to feed the model (librosa: any of zcr, mfcc, mel,
                contrast; meta.json lists a cache's blocks); None: all of them. Channels keep the
                cache's stacking order whatever order they are named in.
            crop_frames: Frames of each random training crop (shorter utterances are zero-padded).
            max_eval_frames: Longest evaluation input; longer utterances are centre-cropped.
            normalization: "global": per-channel mean/std of the source train frames, in every method
                (target_supervised too, so all methods see identical inputs); "speaker": each speaker
                standardised by the mean/std of their own train and val frames (no labels, no test
                audio; prediction needs the speaker's statistics: stored in the checkpoint, or enrolled
                from other recordings of the speaker); "utterance": each utterance by its own mean/std,
                so one recording alone can be classified (not for the stats encoder: its pooled
                mean/std would be the same for every utterance); "none".
            batch_size: Utterances per training batch, per side.
            eval_batch_size: Utterances per evaluation batch.
            steps_per_epoch: Training batches per epoch; default ceil(labelled train / batch_size).
            seed: Seed of the training streams (each distributed rank draws its own stream).
            pooled: Serve every utterance as its pooled statistics (`statistics()`: x of shape
                (batch, 2 * channels, 1), lengths 1), computed once in `setup`, whenever that changes
                nothing: when every utterance fits in `crop_frames` and `max_eval_frames`, so training
                and evaluation see whole utterances. Longer ones get frames as usual. The CLI sets it
                for encoders that pool mean and std over time (`accepts_pooled`) when nothing augments
                the frames; it is not a user setting.
        """
        super().__init__()
        _check_choice("source", source, LANGUAGES)
        _check_choice("target", target, LANGUAGES)
        _check_choice("labelled", labelled, ("source", "target"))
        _check_choice("normalization", normalization, NORMALIZATIONS)
        if source == target:
            raise ValueError(f"source and target are both {source!r}; choose two different languages")
        for name, value in [
            ("crop_frames", crop_frames),
            ("max_eval_frames", max_eval_frames),
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("steps_per_epoch", 1 if steps_per_epoch is None else steps_per_epoch),
        ]:
            if value < 1:
                raise ValueError(f"{name} must be a positive number, got {value}")
        self.save_hyperparameters()
        self.cache_dir = Path(cache_dir)
        self.source, self.target = source, target
        self.labelled, self.unlabelled_target = labelled, unlabelled_target
        self.front_end, self.blocks = _front_end(self.cache_dir)
        self.features = _check_features(features, self.front_end.name, self.blocks, self.cache_dir)
        self.crop_frames, self.max_eval_frames = crop_frames, max_eval_frames
        self.normalization = normalization
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.steps_per_epoch, self.seed = steps_per_epoch, seed
        self.pooled = pooled
        self.frames: Tensor | None = None
        self.offsets: Tensor | None = None
        self.manifest: pd.DataFrame | None = None
        self.normalization_stats: ChannelStats | None = None
        self.speakers: list[str] = []
        self._pooled: dict[int, Tensor] = {}
        self.inputs: tuple[Tensor, Tensor] | None = None
        """What batches are gathered from: (frames, offsets), or pooled statistics with one "frame" per
        utterance."""

    @property
    def num_channels(self) -> int:
        """Input channels of the model: the channels of the selected feature blocks."""
        widths = self.blocks
        return sum(widths[name] for name in self.features)

    @property
    def direction(self) -> str:
        """The adaptation direction, e.g. `en2zh`."""
        return direction_name(self.source, self.target)

    @property
    def labelled_language(self) -> str:
        """The language whose train labels the model learns from."""
        return self.target if self.labelled == "target" else self.source

    @property
    def train_steps(self) -> int:
        """Training batches per epoch (needs `setup`)."""
        return self.steps_per_epoch or math.ceil(
            len(self.rows(self.labelled_language, "train")) / self.batch_size
        )

    def setup(self, stage: str | None = None) -> None:
        """Load the cache once, keep the selected channels normalised, and check the stage's splits exist."""
        if self.frames is None:
            self._load()
        for split in STAGE_SPLITS.get(stage, SPLITS):
            for language in (self.source, self.target):
                self.rows(language, split)

    def rows(self, language: str, split: str) -> np.ndarray:
        """Manifest rows of a language and split (needs `setup`); a clear error when there are none."""
        manifest = self._loaded_manifest()
        keep = ((manifest["language"] == language) & (manifest["split"] == split)).to_numpy()
        if not keep.any():
            counts = manifest.groupby(["language", "split"]).size()
            found = ", ".join(f"{lang}/{spl}: {n}" for (lang, spl), n in counts.items()) or "no rows"
            raise CacheError(
                f"no {split} utterances for language {language} in {self.cache_dir} (it holds {found}). "
                "Rebuild the cache from a corpus with both languages and all splits, "
                "or choose other --data.source/--data.target."
            )
        return np.flatnonzero(keep)

    def train_dataloader(self) -> CombinedLoader:
        """`train_steps` paired batches {"labelled": ..., "unlabelled": ...} ("unlabelled" only when
        `unlabelled_target`)."""
        frames, offsets = self._tensors()
        rows = self.rows(self.labelled_language, "train")
        crops = {
            "crop_frames": self.crop_frames,
            "batch_size": self.batch_size,
            "steps": self.train_steps,
            "seed": self.seed,
        }
        labels, speakers = self.labels(rows), self.speaker_ids(rows)
        labelled = LabelledRandomCrops(
            frames, offsets, torch.from_numpy(rows), labels, **crops, stream=0, speakers=speakers
        )
        loaders = {LABELLED: StreamLoader(labelled)}
        if self.unlabelled_target:
            target_rows = self.rows(self.target, "train")
            unlabelled = RandomCrops(
                frames,
                offsets,
                torch.from_numpy(target_rows),
                **crops,
                stream=1,
                speakers=self.speaker_ids(target_rows),
            )
            loaders[UNLABELLED] = StreamLoader(unlabelled)
        # Both sides cycle inside their own stream and yield exactly `train_steps` batches, so
        # "min_size" ends the epoch at train_steps. "max_size_cycle" would add nothing but risk: it
        # restarts an exhausted side's iterator mid-epoch and stretches the epoch to the longer side.
        return CombinedLoader(loaders, mode="min_size")

    def val_dataloader(self) -> list[DataLoader]:
        """In `keys.VAL_LOADERS` order: source val, target val (labels for scoring only), target
        train without labels, and target test (scored only for the `target_test_oracle` rule)."""
        return [
            self._eval_loader(self.source, "val"),
            self._eval_loader(self.target, "val"),
            self._eval_loader(self.target, "train", labelled=False),
            self._eval_loader(self.target, "test"),
        ]

    def test_dataloader(self) -> list[DataLoader]:
        """In `keys.TEST_LOADERS` order: source test, target test."""
        return [self._eval_loader(self.source, "test"), self._eval_loader(self.target, "test")]

    def predict_dataloader(self) -> DataLoader:
        """Every utterance of both languages as {"x", "lengths", "row"}; `row` indexes `self.manifest`."""
        return self._batches_of(torch.arange(len(self._loaded_manifest())), with_rows=True)

    def _eval_loader(self, language: str, split: str, labelled: bool = True) -> DataLoader:
        rows = self.rows(language, split)
        labels = self.labels(rows) if labelled else None
        return self._batches_of(torch.from_numpy(rows), labels=labels)

    def _batches_of(self, rows: Tensor, **options) -> DataLoader:
        """Whole-utterance batches of `rows`, by length; `options` go to EvalBatches."""
        frames, offsets = self._tensors()
        batches = EvalBatches(
            frames,
            offsets,
            rows,
            self.max_eval_frames,
            self.eval_batch_size,
            sizes=self._sizes(rows),
            **options,
        )
        return _loader(batches)

    def _sizes(self, rows: Tensor) -> Tensor:
        """Frames of the utterances (evaluation batches them by length, pooled or not)."""
        return utterance_sizes(self.offsets, rows)

    def _load(self) -> None:
        """Read the selected channels and normalise them, or take them from the last data module of this
        process with the same cache files and settings (`reuse`: a grid's runs share one read)."""
        key = (
            files_identity(self.cache_dir),
            self.features,
            self.normalization,
            self.source if self.normalization == "global" else None,
        )
        loaded = reused(key, self._read_normalised)
        self.manifest, self.frames, self.offsets = loaded.manifest, loaded.frames, loaded.offsets
        self.normalization_stats, self.speakers = loaded.stats, list(loaded.speakers)
        self._pooled = loaded.pooled
        self.inputs = (self.frames, self.offsets)
        longest = int((self.offsets[1:] - self.offsets[:-1]).max())
        if self.pooled and longest <= min(self.crop_frames, self.max_eval_frames):
            self.inputs = (self.statistics(), torch.arange(len(self.manifest) + 1))

    def _read_normalised(self) -> _Loaded:
        cache = load_cache(self.cache_dir, mmap=True)
        n_channels = sum(self.blocks.values())
        if cache.features.shape[1] != n_channels:
            raise CacheError(
                f"{self.cache_dir}: features have {cache.features.shape[1]} channels but its front end "
                f"describes {n_channels}. Delete the folder and run sed-uda prepare again."
            )
        slices = block_slices(self.blocks)
        channels = np.concatenate([np.arange(n_channels)[slices[name]] for name in self.features])
        # All blocks (the default) are one contiguous slice: a plain read, not a fancy-indexed gather.
        contiguous = np.array_equal(channels, np.arange(channels[0], channels[-1] + 1))
        selected = (
            cache.features[:, channels[0] : channels[-1] + 1] if contiguous else cache.features[:, channels]
        )
        frames = np.array(selected, dtype=np.float16)
        self.manifest = cache.manifest
        stats = None
        if self.normalization != "none":
            groups, members = self._normalization_groups()
            stats = standardise(frames, cache.offsets, groups, members)
        offsets = torch.from_numpy(cache.offsets.astype(np.int64))
        return _Loaded(cache.manifest, torch.from_numpy(frames), offsets, stats, tuple(self.speakers))

    def statistics(self) -> Tensor:
        """(utterances, 2 * channels) float32: every utterance's per-channel mean and std over its
        normalised frames as evaluation sees them (centred `max_eval_frames` crop), in manifest order
        (needs `setup`). The pooled stats encoder and the logistic-regression baselines read these;
        computed once per crop length and shared like the frames (read-only)."""
        rows = torch.arange(len(self._loaded_manifest()))
        if self.max_eval_frames not in self._pooled:
            self._pooled[self.max_eval_frames] = utterance_statistics(
                self.frames, self.offsets, rows, self.max_eval_frames
            )
        return self._pooled[self.max_eval_frames]

    def _normalization_groups(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Group of every utterance and the utterances each group's statistics come from."""
        if self.normalization == "global":
            return np.zeros(len(self.manifest), dtype=np.int64), [self.rows(self.source, "train")]
        if self.normalization == "utterance":
            rows = np.arange(len(self.manifest))
            return rows, list(rows[:, None])
        speakers, names = pd.factorize(self.manifest["speaker"])
        self.speakers = [str(name) for name in names]
        usable = self.manifest["split"].isin(STATISTICS_SPLITS).to_numpy()
        members = [np.flatnonzero((speakers == group) & usable) for group in range(len(names))]
        missing = [self.speakers[g] for g, rows in enumerate(members) if len(rows) == 0]
        if missing:
            raise CacheError(
                f"{self.cache_dir}: speakers {missing} have no {' or '.join(STATISTICS_SPLITS)} utterances "
                "to compute their statistics from (test audio is never used); "
                "choose --data.normalization utterance or global"
            )
        return speakers, members

    def speaker_ids(self, rows: np.ndarray) -> Tensor:
        """Speaker indices (int64) of manifest rows, the two languages' speakers numbered together by
        (language, speaker): metadata every corpus has, not emotion labels; training batches carry them
        for speaker-adversarial methods, whose speakers are then the train speakers of both languages."""
        manifest = self._loaded_manifest()
        codes, _ = pd.factorize(manifest["language"].astype(str) + "/" + manifest["speaker"].astype(str))
        return torch.from_numpy(codes[rows].astype(np.int64))

    def labels(self, rows: np.ndarray) -> Tensor:
        """Emotion indices of manifest rows (training and scoring; never served to the unlabelled side)."""
        return torch.from_numpy(_labels_of(self._loaded_manifest(), rows, self.cache_dir))

    def _loaded_manifest(self) -> pd.DataFrame:
        if self.manifest is None:
            raise RuntimeError("CrossLingualDataModule.setup() must run before its loaders are used")
        return self.manifest

    def _tensors(self) -> tuple[Tensor, Tensor]:
        self._loaded_manifest()
        return self.inputs

    # ---- checkpoint state: what a checkpoint needs to be used without the cache ----------------------
    # Lightning stores `state_dict()` in every checkpoint under this class's name and hands it back to
    # `load_state_dict` when a checkpoint is restored (fit resume, validate/test/predict --ckpt_path).

    def recipe(self) -> dict[str, object]:
        """How inputs are made from audio, known from the configuration alone (no `setup` needed)."""
        return {
            "front_end": self.front_end.config(),
            "blocks": dict(self.blocks),
            "features": list(self.features),
            "num_channels": self.num_channels,
            "normalization": self.normalization,
            "class_names": list(EMOTIONS),
            "direction": self.direction,
        }

    def state_dict(self) -> dict[str, object]:
        """The recipe, the front end's library versions, the evaluation crop and the normalisation
        statistics: the source-train mean/std (global), every training speaker's train+val mean/std with
        their names (speaker), or none (utterance, none)."""
        return {
            **self.recipe(),
            "front_end_versions": read_meta(self.cache_dir).get("front_end_versions"),
            "max_eval_frames": self.max_eval_frames,
            "normalization_stats": self._stored_stats(),
        }

    def _stored_stats(self) -> dict[str, object] | None:
        stats = self.normalization_stats
        if stats is None or self.normalization not in ("global", "speaker"):
            return None
        if self.normalization == "global":
            return {"mean": torch.from_numpy(stats.mean[0]), "std": torch.from_numpy(stats.std[0])}
        return {
            "speakers": self.speakers,
            "mean": torch.from_numpy(stats.mean),
            "std": torch.from_numpy(stats.std),
        }

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        """Refuse a checkpoint whose inputs were made differently from this configuration's."""
        different = differences(
            {"data": {k: state_dict.get(k) for k in self.recipe()}}, {"data": self.recipe()}
        )
        if different:
            raise CheckpointMismatch(f"the checkpoint's data differ from the configuration: {different}")


def _labels_of(manifest: pd.DataFrame, rows: np.ndarray, cache_dir: Path) -> np.ndarray:
    """Emotion indices of the rows; a clear error for an emotion outside EMOTIONS."""
    emotions = manifest["emotion"].iloc[rows]
    unknown = sorted(set(emotions) - set(EMOTIONS))
    if unknown:
        raise CacheError(f"{cache_dir}: manifest has emotions {unknown} outside {list(EMOTIONS)}")
    return emotions.map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy(dtype=np.int64, copy=True)


def _loader(dataset: Dataset) -> DataLoader:
    """Batches are built in-process from memory by the dataset itself."""
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_features(
    features: Sequence[str] | None, front_end: str, blocks: dict[str, int], cache_dir: Path
) -> tuple[str, ...]:
    """The selected blocks in stacking order (None: all); a clear error for unknown, repeated or no names."""
    if features is None:
        return tuple(blocks)
    names = [features] if isinstance(features, str) else list(features)
    unknown = [name for name in names if name not in blocks]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"features must be distinct block names of the {front_end} front end of {cache_dir} "
            f"({', '.join(blocks)}), got {names}"
            + (f" (unknown: {unknown})" if unknown else "")
            + "; --data.features=null takes all of them"
        )
    return tuple(name for name in blocks if name in names)


def _front_end(cache_dir: Path) -> tuple[FrontEnd, dict[str, int]]:
    """The front end recorded in the cache's meta.json and the blocks of its frames."""
    meta = read_meta(cache_dir)
    try:
        return recorded(meta), recorded_blocks(meta)
    except FrontEndError as error:
        raise CacheError(f"{cache_dir / 'meta.json'}: {error}") from error

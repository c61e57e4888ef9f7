"""A trained checkpoint ready to classify audio: `load_model(ckpt).predict("clip.wav")`.

Everything needed to turn audio into the model's input travels in the checkpoint (the data module's
state: front end (class_path + init_args), feature blocks, normalisation mode and statistics, class
names, evaluation crop), so no feature cache is needed. The model is rebuilt by
`UDAModule.load_from_checkpoint` from its saved hyperparameters, whatever encoder or adaptation
components they name.

Inputs are standardised as in training: `global` with the stored source-train statistics, `utterance`
by each recording's own, `speaker` by the statistics of the recording's speaker: stored in the checkpoint
for the training speakers, or enrolled (`enroll`) from other recordings of a new speaker. A speaker model
asked to predict without a speaker refuses, with the fix: its answer would not mean anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sed_uda.data.crops import EvalBatches
from sed_uda.data.normalization import ChannelStats, apply_stats, pooled_stats, standardise
from sed_uda.errors import BadArgument, CheckpointMismatch, UserError
from sed_uda.features.frontends import FrontEndError, recorded
from sed_uda.inference.audio import recording_features, select_channels, waveform_features
from sed_uda.inference.checkpoint import data_state, read_checkpoint
from sed_uda.inference.speakers import FOLDER_PREFIX

MIN_ENROL_RECORDINGS = 5
"""Fewest recordings a speaker is enrolled from: statistics of one recording standardise away the level
and spread that carry its emotion (the stats encoder then sees the same vector for every clip)."""

Audio = str | Path | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Prediction:
    """The predicted emotion, its probability, and every class's probability."""

    emotion: str
    confidence: float
    probabilities: dict[str, float]


class NeedsSpeaker(UserError):
    """A per-speaker model asked to predict without a speaker whose statistics it has."""


class EmotionModel:
    """A checkpoint's model with the recipe that makes its inputs from audio.

    `predict` classifies recordings (paths, or samples with their sample rate); `enroll` adds a speaker's
    statistics (speaker models); `predict_features` classifies many feature arrays at once in
    length-sorted batches, as evaluation does.
    """

    def __init__(self, model: torch.nn.Module, state: dict, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.front_end = recorded(state)
        self.features: tuple[str, ...] = tuple(state["features"])
        self.normalization: str = state["normalization"]
        self.class_names: tuple[str, ...] = tuple(state["class_names"])
        self.direction: str = state["direction"]
        self.max_eval_frames: int = int(state["max_eval_frames"])
        stats = state.get("normalization_stats") or {}
        self.global_stats = None
        self.speaker_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.normalization == "global":
            self.global_stats = ChannelStats(stats["mean"].numpy()[None], stats["std"].numpy()[None])
        elif "speakers" in stats:
            mean, std = stats["mean"].numpy(), stats["std"].numpy()
            self.speaker_stats = {name: (mean[k], std[k]) for k, name in enumerate(stats["speakers"])}

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speakers with statistics: the training speakers stored in the checkpoint, then those enrolled."""
        return tuple(self.speaker_stats)

    def predict(
        self, audio: Audio | Sequence[str | Path], sample_rate: int | None = None, speaker: str | None = None
    ) -> Prediction | list[Prediction]:
        """Classify a recording (a path, or samples at `sample_rate`: (samples,), (samples, channels) or
        (channels, samples)), or a list of them (a list of Predictions). Speaker models need `speaker`:
        a stored or enrolled name (`speakers`)."""
        many = isinstance(audio, list | tuple) and all(isinstance(a, str | Path) for a in audio)
        features = [self._features(a, sample_rate) for a in (audio if many else [audio])]
        probabilities = self.predict_features(
            features, None if speaker is None else [speaker] * len(features)
        )
        predictions = [self.prediction(p) for p in probabilities]
        return predictions if many else predictions[0]

    def enroll(self, speaker: str, recordings: Sequence[Audio], sample_rate: int | None = None) -> None:
        """Compute a speaker's statistics from their recordings (paths, or samples at `sample_rate`), so
        that `predict(..., speaker=speaker)` standardises as training did. Several recordings of varied
        emotions work best, as in training, where a speaker's statistics pool all their train audio."""
        self.enroll_features(speaker, [self._features(r, sample_rate) for r in recordings])

    def enroll_features(self, speaker: str, features: Sequence[np.ndarray]) -> None:
        """`enroll` from full-channel float16 features as `prepare` stores them."""
        if self.normalization != "speaker":
            raise BadArgument(
                f"this model uses {self.normalization!r} normalisation, not per-speaker: it needs no "
                "enrolment; predict without speaker="
            )
        if len(features) < MIN_ENROL_RECORDINGS:
            raise NeedsSpeaker(
                f"speaker {_shown(speaker)}: {len(features)} recording(s) to enrol from; give at least "
                f"{MIN_ENROL_RECORDINGS} (statistics of fewer would standardise away what says the emotion)"
            )
        frames, offsets = _stack([select_channels(f, self.front_end, self.features) for f in features])
        stats = pooled_stats(frames, offsets, [np.arange(len(features))])
        self.speaker_stats[speaker] = (stats.mean[0], stats.std[0])

    def prediction(self, probabilities: np.ndarray) -> Prediction:
        best = int(np.argmax(probabilities))
        named = {name: float(p) for name, p in zip(self.class_names, probabilities, strict=True)}
        return Prediction(self.class_names[best], float(probabilities[best]), named)

    def predict_features(
        self, features: Sequence[np.ndarray], speakers: Sequence[str] | None = None, batch_size: int = 64
    ) -> np.ndarray:
        """(n, classes) probabilities of full-channel float16 features as `prepare` stores them;
        `speakers` names each recording's speaker (speaker models)."""
        if batch_size < 1:
            raise BadArgument(f"batch size {batch_size}: give a positive number of recordings per batch")
        frames, offsets = _stack([select_channels(f, self.front_end, self.features) for f in features])
        self._standardise(frames, offsets, speakers)
        rows = torch.arange(len(features))
        batches = EvalBatches(
            torch.from_numpy(frames),
            torch.from_numpy(offsets),
            rows,
            self.max_eval_frames,
            batch_size,
            with_rows=True,
        )
        out = np.empty((len(features), len(self.class_names)), dtype=np.float32)
        with torch.inference_mode():
            for batch in (batches[i] for i in range(len(batches))):
                logits = self.model(batch["x"].to(self.device), batch["lengths"].to(self.device))
                out[batch["row"].numpy()] = logits.float().softmax(-1).cpu().numpy()
        return out

    def _standardise(self, frames: np.ndarray, offsets: np.ndarray, speakers: Sequence[str] | None) -> None:
        """Standardise stacked frames in place as the data module did in training."""
        n = len(offsets) - 1
        if self.normalization == "global":
            apply_stats(frames, offsets, np.zeros(n, dtype=np.int64), self.global_stats)
        elif self.normalization == "utterance":
            standardise(frames, offsets, np.arange(n), list(np.arange(n)[:, None]))
        elif self.normalization == "speaker":
            names = self.check_speakers(speakers)
            groups = np.array([names.index(s) for s in speakers])
            mean, std = zip(*(self.speaker_stats[name] for name in names), strict=True)
            apply_stats(frames, offsets, groups, ChannelStats(np.stack(mean), np.stack(std)))

    def check_speakers(self, speakers: Sequence[str] | None) -> list[str]:
        """The distinct speakers named; NeedsSpeaker (with the fix) when none are, or some are unknown."""
        if speakers is None:
            raise NeedsSpeaker(
                "this model standardises each speaker by their own statistics, so it needs to know who "
                "speaks: classify --speaker-from parent-folder (one folder per speaker) or --speaker-from "
                "FILE.csv (columns file,speaker), in Python predict(..., speaker=NAME) after enroll(NAME, "
                "recordings); or use a model trained with --data.normalization utterance or global"
            )
        unknown = sorted(set(speakers) - set(self.speaker_stats))
        if unknown:
            raise NeedsSpeaker(
                f"no statistics for speaker {_shown(unknown[0])}: enroll(name, recordings) first "
                f"(speakers with statistics: {', '.join(map(_shown, self.speakers)) or 'none'})"
            )
        return sorted(set(speakers))

    def _features(self, audio: Audio, sample_rate: int | None) -> np.ndarray:
        if isinstance(audio, str | Path):
            return recording_features(audio, self.front_end)[0]
        if sample_rate is None:
            raise BadArgument("pass sample_rate= with samples (e.g. predict(samples, sample_rate=44100))")
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().numpy()
        return waveform_features(audio, sample_rate, self.front_end)


def _stack(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Utterances back to back (the cache layout): float16 frames (a copy) and offsets."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
    return np.concatenate(arrays).astype(np.float16), offsets


def _shown(speaker: str) -> str:
    """A speaker as users named them (a folder's path for `--speaker-from parent-folder`)."""
    return speaker.removeprefix(FOLDER_PREFIX)


def load_model(checkpoint: str | Path, device: str = "cpu") -> EmotionModel:
    """The model of a `sed-uda fit` checkpoint, ready to `predict` audio (read with weights_only=True).

    `device`: "cpu", "cuda" (or "gpu"), "cuda:N"; a GPU device without a GPU is refused in one line."""
    from sed_uda.models.uda import UDAModule

    device = check_device(device)
    state = data_state(read_checkpoint(checkpoint), checkpoint)
    model = UDAModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    try:
        return EmotionModel(model, state, device)
    except FrontEndError as error:
        raise CheckpointMismatch(f"{checkpoint}: its front end cannot be built here ({error})") from error


def check_device(device: str) -> str:
    """A torch device name for `device` ("gpu" means "cuda"); one-line errors for unknown names and for
    a GPU on a machine without one."""
    name = "cuda" + device[3:] if device.startswith("gpu") else device
    try:
        kind = torch.device(name).type
    except RuntimeError as error:
        raise BadArgument(f"--device {device}: use cpu, cuda (or gpu) or cuda:N") from error
    if kind not in ("cpu", "cuda"):
        raise BadArgument(f"--device {device}: use cpu, cuda (or gpu) or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is available on this machine; use --device cpu")
    return name

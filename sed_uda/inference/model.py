"""A trained checkpoint ready to classify audio: `load_model(ckpt).predict("clip.wav")`.

Everything needed to turn audio into the model's input travels in the checkpoint (the data module's
state: feature config, feature blocks, normalisation mode and statistics, class names, evaluation
crop), so no feature cache is needed. The model is rebuilt by `UDAModule.load_from_checkpoint` from
its saved hyperparameters, whatever encoder or adaptation components they name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sed_uda.data.crops import EvalBatches
from sed_uda.errors import CheckpointMismatch
from sed_uda.features.config import FeatureConfig
from sed_uda.inference.audio import recording_features, select_channels, waveform_features
from sed_uda.inference.checkpoint import data_state, read_checkpoint
from sed_uda.inference.normalize import speaker_groups, stack, standardise_global, standardise_groups


@dataclass(frozen=True)
class Prediction:
    """The predicted emotion, its probability, and every class's probability."""

    emotion: str
    confidence: float
    probabilities: dict[str, float]


class EmotionModel:
    """A checkpoint's model with the recipe that makes its inputs from audio.

    `predict` classifies one recording (path, or samples with their sample rate); `predict_features`
    classifies many feature arrays at once in length-sorted batches, as evaluation does.
    """

    def __init__(self, model: torch.nn.Module, state: dict, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.config = FeatureConfig.from_dict(state["feature_config"])
        self.features: tuple[str, ...] = tuple(state["features"])
        self.normalization: str = state["normalization"]
        self.class_names: tuple[str, ...] = tuple(state["class_names"])
        self.direction: str = state["direction"]
        self.max_eval_frames: int = int(state["max_eval_frames"])
        stats = state.get("normalization_stats")
        self.mean = None if stats is None else stats["mean"].numpy()
        self.std = None if stats is None else stats["std"].numpy()

    def predict(self, audio: str | Path | np.ndarray, sample_rate: int | None = None) -> Prediction:
        """Classify one recording: a wav/flac path, or samples (mono or (samples, channels)) at
        `sample_rate`. In speaker-normalisation mode the recording is standardised by its own statistics."""
        if isinstance(audio, str | Path):
            features, _ = recording_features(audio, self.config)
        else:
            if sample_rate is None:
                raise ValueError(
                    "pass sample_rate= with a waveform (e.g. predict(samples, sample_rate=44100))"
                )
            features = waveform_features(audio, sample_rate, self.config)
        probabilities = self.predict_features([features], speaker_from="file")[0]
        return self.prediction(probabilities)

    def prediction(self, probabilities: np.ndarray) -> Prediction:
        best = int(np.argmax(probabilities))
        named = {name: float(p) for name, p in zip(self.class_names, probabilities, strict=True)}
        return Prediction(self.class_names[best], float(probabilities[best]), named)

    def predict_features(
        self,
        features: Sequence[np.ndarray],
        speaker_from: str = "file",
        files: Sequence[Path] | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        """(n, classes) probabilities of full-channel float16 features as `prepare` stores them.

        Global normalisation uses the stored statistics; speaker normalisation groups the utterances
        by `speaker_from` ("parent-folder" of `files`, or "file": each alone)."""
        frames, offsets = stack([select_channels(f, self.config, self.features) for f in features])
        if self.normalization == "global":
            frames = standardise_global(frames, self.mean, self.std)
        elif self.normalization == "speaker":
            names = files if files is not None else [Path(str(i)) for i in range(len(features))]
            frames = standardise_groups(frames, offsets, speaker_groups(names, speaker_from))
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


def load_model(checkpoint: str | Path, device: str = "cpu") -> EmotionModel:
    """The model of a `sed-uda fit` checkpoint, ready to `predict` audio (read with weights_only=True)."""
    from sed_uda.models.uda import UDAModule

    state = data_state(read_checkpoint(checkpoint), checkpoint)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointMismatch(
            f"device {device!r} requested but no CUDA GPU is available; use --device cpu"
        )
    model = UDAModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    return EmotionModel(model, state, device)

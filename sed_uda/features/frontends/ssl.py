"""Hidden states of a self-supervised speech model (WavLM, HuBERT, wav2vec 2.0 / XLS-R) from transformers.

The model is a Hugging Face hub name (found in the local hub cache: nothing is downloaded here) or a
folder written by `save_pretrained` / `huggingface-cli download --local-dir`. Frames come at the
model's rate (20 ms for these models), computed in batches, on a GPU with `prepare --device cuda`.

Layers: `layer: N` stores one hidden state (0 is the CNN encoder's projection, N the N-th transformer
layer); `layer: null` stores every layer as its own block (`layer0` ... `layerL`), so the data module's
`features` picks layers at training time without extracting again. Emotion is known to peak in the
middle layers, and the best layer differs per model; the all-layer cache costs (L + 1) times the disk
and memory (WavLM base+: 13 x 768 channels), which is why one layer is the default. A learned weighted
sum of layers would have to live in the model, over such an all-layer cache (left for later).

The optional extra is `pip install 'sed_uda[ssl]'`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import xxhash

from sed_uda.features.frontends.base import FrontEnd, FrontEndError, optional_module

INSTALL = "the ssl front end needs transformers: pip install 'sed_uda[ssl]'"
WEIGHT_FILES = ("config.json", "preprocessor_config.json", "*.safetensors", "*.bin")


def _transformers():  # noqa: ANN202 - the module, imported late because it is an optional extra
    return optional_module("transformers", INSTALL)


@lru_cache(maxsize=2)
def _load(model: str, device: str) -> tuple:
    """(feature extractor, model in eval mode on `device`), loaded once per process."""
    transformers = _transformers()
    try:
        extractor = transformers.AutoFeatureExtractor.from_pretrained(model, local_files_only=True)
        network = transformers.AutoModel.from_pretrained(model, local_files_only=True)
    except OSError as error:
        raise FrontEndError(
            f"model {model!r} is neither a local folder nor in the Hugging Face cache "
            f"({str(error).splitlines()[0]}); "
            "on a machine with internet access run `huggingface-cli download "
            f"{model} --local-dir models/{Path(model).name}` and use that folder (see the README)"
        ) from error
    return extractor, network.to(device).eval()


@dataclass(frozen=True)
class SpeechModelStates(FrontEnd):
    """Hidden states of a transformers speech model, one layer or all of them.

    Args:
        sample_rate: Audio rate the model was trained on (16 kHz for all the models above).
        min_duration_s: Shorter recordings are refused as unusable.
        model: Hub name (e.g. microsoft/wavlm-base-plus, from the local cache) or a local folder.
        layer: Hidden state to keep (0: CNN features, L: last layer); null: all layers as blocks.
        batch_size: Recordings per forward pass in `prepare`.
    """

    model: str = "microsoft/wavlm-base-plus"
    layer: int | None = 6
    batch_size: int = 8
    runs_on_device = True

    def _network_config(self):  # noqa: ANN202 - a transformers PretrainedConfig
        transformers = _transformers()
        try:
            return transformers.AutoConfig.from_pretrained(self.model, local_files_only=True)
        except OSError:
            return _load(self.model, "cpu")[1].config  # raises the FrontEndError that says how to get it

    @property
    def blocks(self) -> dict[str, int]:
        config = self._network_config()
        layers = range(config.num_hidden_layers + 1) if self.layer is None else [self.layer]
        return {f"layer{k}": config.hidden_size for k in layers}

    def check(self) -> None:
        if self.batch_size < 1:
            raise FrontEndError(f"batch_size={self.batch_size}: need at least 1")
        if self.layer is not None and self.layer < 0:
            raise FrontEndError(
                f"layer={self.layer}: use 0 (CNN features) to the last layer, or null for all"
            )

    def versions(self) -> dict[str, str]:
        """transformers' and torch's versions and a fingerprint of a local model's files."""
        import torch

        out = {"transformers": _transformers().__version__, "torch": torch.__version__}
        folder = Path(self.model)
        if folder.is_dir():
            digest = xxhash.xxh3_64()
            for path in sorted(p for pattern in WEIGHT_FILES for p in folder.glob(pattern)):
                digest.update(path.name.encode() + path.read_bytes())
            out["model_files"] = digest.hexdigest()
        return out

    def extract(self, signal: np.ndarray) -> np.ndarray:
        return self.extract_batch([signal])[0]

    def extract_batch(self, signals: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        """(frames, channels) float32 hidden states of each signal.

        A recording's frames never depend on what it is batched with: models whose CNN normalises over
        time (`feat_extract_norm: group`, e.g. wav2vec 2.0 base, WavLM base+) see each recording alone,
        since padding would shift that norm; the others get one padded forward pass per batch with an
        attention mask."""
        extractor, network = _load(self.model, device)
        last = network.config.num_hidden_layers
        if self.layer is not None and self.layer > last:
            raise FrontEndError(f"layer={self.layer}: {self.model} has layers 0 to {last}")
        if getattr(network.config, "feat_extract_norm", "layer") == "layer":
            return self._forward(extractor, network, signals, device)
        return [self._forward(extractor, network, [signal], device)[0] for signal in signals]

    def _forward(self, extractor, network, signals: list[np.ndarray], device: str) -> list[np.ndarray]:  # noqa: ANN001
        import torch

        inputs = extractor(
            [np.asarray(s, np.float32) for s in signals],
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        lengths = network._get_feat_extract_output_lengths(torch.tensor([len(s) for s in signals]))
        with torch.inference_mode():
            states = network(
                inputs["input_values"].to(device),
                attention_mask=inputs["attention_mask"].to(device),
                output_hidden_states=True,
            ).hidden_states
        chosen = states if self.layer is None else (states[self.layer],)
        stacked = torch.cat(chosen, dim=-1).float().cpu().numpy()
        return [stacked[k, : int(n)] for k, n in enumerate(lengths)]

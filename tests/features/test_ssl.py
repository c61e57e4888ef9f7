"""The ssl front end on a tiny randomly initialised WavLM saved to a folder: prepare, fit, classify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sed_uda.features.frontends import FrontEndError
from sed_uda.features.frontends.ssl import SpeechModelStates
from sed_uda.features.store import load_cache
from sed_uda.inference.audio import recording_features
from sed_uda.inference.model import load_model
from tests.features.conftest import fit_one_epoch
from tests.test_cli import one_line, sed_uda


def tiny_wavlm(folder: Path, feat_extract_norm: str = "layer") -> Path:
    """A 2-layer, 16-wide WavLM with the real models' 320-sample frame step, saved as a hub download is."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    torch.manual_seed(0)
    config = WavLMConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        feat_extract_norm=feat_extract_norm,
        conv_dim=(16, 16, 16, 16),
        conv_kernel=(10, 8, 4, 4),
        conv_stride=(5, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    WavLMModel(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_wavlm(tmp_path_factory.mktemp("models") / "tiny-wavlm")


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_frames_do_not_depend_on_the_batch(norm: str, tmp_path: Path) -> None:
    front_end = SpeechModelStates(model=str(tiny_wavlm(tmp_path / norm, norm)), layer=None, batch_size=3)
    signals = [
        0.1 * np.random.default_rng(k).standard_normal(n).astype(np.float32)
        for k, n in enumerate([16_000, 8_000, 12_345])
    ]
    together = front_end.extract_batch(signals)
    assert [a.shape for a in together] == [(49, 48), (24, 48), (38, 48)]
    assert front_end.blocks == {"layer0": 16, "layer1": 16, "layer2": 16}
    for signal, batched in zip(signals, together, strict=True):
        np.testing.assert_allclose(batched, front_end.extract(signal), atol=1e-4)


def test_prepare_fit_classify_with_a_local_model(
    model_folder: Path, tiny_corpus: Path, tmp_path: Path, capsys
) -> None:
    config = tmp_path / "ssl.yaml"
    config.write_text(
        "class_path: sed_uda.features.frontends.ssl.SpeechModelStates\n"
        f"init_args: {{model: {model_folder}, layer: 2, batch_size: 4}}\n"
    )
    cache = tmp_path / "cache"
    status, _, err = sed_uda(
        ["prepare", "--root", str(tiny_corpus), "--cache", str(cache), "--front-end", str(config)], capsys
    )
    assert status == 0, err
    loaded = load_cache(cache)
    assert loaded.blocks == {"layer2": 16} and loaded.meta["front_end_versions"]["model_files"]

    ckpt = fit_one_epoch(cache, tmp_path / "run", ["adaptation/mcc.yaml"])
    wav = tiny_corpus / loaded.manifest["path"][3]
    frames, _ = recording_features(wav, load_model(ckpt).front_end)
    # alone here, batched with 3 others in prepare: equal up to float rounding (one float16 step)
    np.testing.assert_allclose(frames.astype(np.float32), loaded.utterance(3), rtol=2e-3, atol=1e-4)
    status, out, err = sed_uda(["classify", "--ckpt", str(ckpt), str(wav)], capsys)
    assert status == 0 and wav.name in out.replace("\n", "").replace("│", "").replace(" ", ""), err


def test_a_model_that_is_not_here_says_how_to_get_it(tmp_path: Path, capsys) -> None:
    config = tmp_path / "ssl.yaml"
    config.write_text(
        "class_path: sed_uda.features.frontends.ssl.SpeechModelStates\n"
        f"init_args: {{model: {tmp_path / 'absent'}}}\n"
    )
    status, _, err = sed_uda(["prepare", "--root", str(tmp_path), "--front-end", str(config)], capsys)
    line = one_line(err, "prepare")
    assert status == 1 and "neither a local folder nor in the Hugging Face cache" in line
    assert "huggingface-cli download" in line
    with pytest.raises(FrontEndError, match="layer=-1"):
        SpeechModelStates(layer=-1).check()

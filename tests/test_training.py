"""End-to-end training through `sed-uda fit`: every experiment config, label hygiene, logged keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wandb

from sed_uda.training_cli import training_cli
from tests.conftest import FAST, REPO
from tests.wandb_offline import history

EXPERIMENTS = sorted((REPO / "configs" / "experiment").glob("*.yaml"))


def _fit(config: Path, cache: Path, root: Path, *extra: str):
    args = ["fit", f"--config={config}", f"--data.cache_dir={cache}", f"--trainer.default_root_dir={root}"]
    return training_cli([*args, *FAST, *extra])


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_config_fits(config: Path, tiny_cache: Path, tmp_path: Path) -> None:
    cli = _fit(config, tiny_cache, tmp_path, "--trainer.fast_dev_run=1")
    assert cli.trainer.state.finished
    assert cli.trainer.global_step == 1
    assert cli.model.hparams.in_channels == cli.datamodule.num_channels
    assert cli.datamodule.hparams.method == cli.model.hparams.method  # linked, never set twice


def _train_weights(cache: Path, root: Path, method: str = "dann") -> dict[str, torch.Tensor]:
    config = REPO / "configs" / "experiment" / f"{method}_cnn1d_en2zh.yaml"
    cli = _fit(
        config, cache, root, "--trainer.max_steps=4", "--trainer.limit_val_batches=0", "--seed_everything=7"
    )
    return {k: v.detach().clone() for k, v in cli.model.state_dict().items()}


def _permute_emotions(cache: Path, language: str) -> None:
    manifest_path = cache / "manifest.csv"
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    rows = manifest.index[manifest.language == language]
    rng = np.random.default_rng(0)
    shuffled = manifest.loc[rows, "emotion"].to_numpy()
    while (shuffled == manifest.loc[rows, "emotion"].to_numpy()).all():
        shuffled = rng.permutation(shuffled)
    manifest.loc[rows, "emotion"] = shuffled
    manifest.to_csv(manifest_path, index=False)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_target_labels_never_reach_uda_training(tiny_cache: Path, cache_copy: Path, tmp_path: Path) -> None:
    """Scrambling the target language's labels leaves DANN's trained weights bit-identical."""
    reference = _train_weights(tiny_cache, tmp_path / "a")
    _permute_emotions(cache_copy, "zh")
    scrambled = _train_weights(cache_copy, tmp_path / "b")
    assert _same(reference, scrambled)


def test_label_scrambling_is_detectable(tiny_cache: Path, cache_copy: Path, tmp_path: Path) -> None:
    """Control for the test above: scrambling the labelled (source) side does change training."""
    reference = _train_weights(tiny_cache, tmp_path / "a")
    _permute_emotions(cache_copy, "en")
    assert not _same(reference, _train_weights(cache_copy, tmp_path / "b"))


@pytest.fixture
def offline_wandb(monkeypatch: pytest.MonkeyPatch):
    """W&B in offline mode for one test (settings are read once per process, so restart it around)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb.teardown()
    yield
    monkeypatch.undo()
    wandb.teardown()


@pytest.mark.usefixtures("offline_wandb")
def test_metrics_reach_wandb_offline_and_csv(tiny_cache: Path, tmp_path: Path) -> None:
    config = REPO / "configs" / "experiment" / "dann_cnn1d_zh2en.yaml"
    _fit(config, tiny_cache, tmp_path, "--trainer.max_epochs=2", "--trainer.log_every_n_steps=1")
    logged = {k: v for row in history(tmp_path) for k, v in row.items()}
    for key in (
        "zh2en/val/target_acc",
        "zh2en/val/target_f1",
        "zh2en/val/source_acc",
        "zh2en/train/grl_lambda",
        "zh2en/train/domain_acc",
        "zh2en/val/target_im",
    ):
        assert key in logged, f"{key} missing from the W&B run"
    csv = pd.read_csv(next(tmp_path.rglob("metrics.csv")))
    last = csv["zh2en/val/target_acc"].dropna().iloc[-1]
    assert logged["zh2en/val/target_acc"] == pytest.approx(last)
    assert not any(k.startswith("en2zh/") for k in logged)


def test_test_and_predict_commands_reuse_a_fitted_checkpoint(tiny_cache: Path, tmp_path: Path) -> None:
    config = REPO / "configs" / "experiment" / "dann_cnn1d_en2zh.yaml"
    _fit(config, tiny_cache, tmp_path / "fit", "--trainer.max_epochs=1")
    checkpoint = tmp_path / "fit" / "checkpoints" / "best-source_acc.ckpt"
    assert checkpoint.is_file()
    common = [f"--config={config}", f"--data.cache_dir={tiny_cache}", f"--ckpt_path={checkpoint}", *FAST]
    tested = training_cli(["test", *common, f"--trainer.default_root_dir={tmp_path / 'test'}"])
    metrics = tested.trainer.callback_metrics
    assert {"en2zh/test/target_acc", "en2zh/test/source_f1"} <= set(metrics)
    predicted = training_cli(["predict", *common, f"--trainer.default_root_dir={tmp_path / 'predict'}"])
    batches = predicted.trainer.predict_loop.predictions
    rows = sum(len(batch["probs"]) for batch in batches)
    assert rows == len(predicted.datamodule.manifest)
    assert all(torch.allclose(b["probs"].sum(-1), torch.ones(len(b["probs"]))) for b in batches)

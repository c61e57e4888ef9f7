"""End-to-end training through `sed-uda fit`: every experiment config, label hygiene, logged metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wandb
from lightning.pytorch.loggers import WandbLogger

from sed_uda.features.store import CacheError
from sed_uda.models.selection.rules import DEFAULT_RULE
from sed_uda.training_cli import training_cli
from tests.conftest import FAST, REPO

CONFIGS = REPO / "configs"
EN2ZH, ZH2EN = CONFIGS / "experiment" / "en2zh.yaml", CONFIGS / "experiment" / "zh2en.yaml"
DANN = CONFIGS / "adaptation" / "dann.yaml"
COMPOSITIONS = [
    *([experiment] for experiment in sorted((CONFIGS / "experiment").glob("*.yaml"))),
    *([EN2ZH, encoder, DANN] for encoder in sorted((CONFIGS / "encoder").glob("*.yaml"))),
    *([EN2ZH, adaptation] for adaptation in sorted((CONFIGS / "adaptation").glob("*.yaml"))),
]
"""Every experiment, encoder and adaptation config, each composed the way the README composes them."""


def _fit(configs: list[Path], cache: Path, root: Path, *extra: str):
    args = [
        *(f"--config={c}" for c in configs),
        f"--data.cache_dir={cache}",
        f"--trainer.default_root_dir={root}",
    ]
    return training_cli(["fit", *args, *FAST, *extra])


@pytest.mark.parametrize("configs", COMPOSITIONS, ids=lambda cs: "+".join(c.stem for c in cs))
def test_every_config_fits(configs: list[Path], tiny_cache: Path, tmp_path: Path) -> None:
    cli = _fit(configs, tiny_cache, tmp_path, "--trainer.fast_dev_run=1")
    assert cli.trainer.state.finished
    assert cli.trainer.global_step == 1
    assert cli.model.hparams.labelled_domain == cli.datamodule.hparams.labelled  # linked, never set twice


def _train_weights(cache: Path, root: Path) -> dict[str, torch.Tensor]:
    cli = _fit(
        [EN2ZH, DANN],
        cache,
        root,
        "--trainer.max_steps=4",
        "--trainer.limit_val_batches=0",
        "--seed_everything=7",
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
def wandb_metrics(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Every metric the run hands its W&B logger (last value per key), recorded in memory."""
    logged: dict[str, float] = {}
    original = WandbLogger.log_metrics

    def record(self: WandbLogger, metrics: dict[str, float], step: int | None = None) -> None:
        logged.update(metrics)
        original(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", record)
    return logged


def test_metrics_reach_the_wandb_logger_and_csv(
    wandb_metrics: dict[str, float], tiny_cache: Path, tmp_path: Path
) -> None:
    _fit([ZH2EN, DANN], tiny_cache, tmp_path, "--trainer.max_epochs=2", "--trainer.log_every_n_steps=1")
    for key in (
        "zh2en/val/target_acc",
        "zh2en/val/target_f1",
        "zh2en/val/source_acc",
        "zh2en/train/dann_lambda",
        "zh2en/train/dann_domain_acc",
        "zh2en/val/target_im",
    ):
        assert key in wandb_metrics, f"{key} was not handed to the W&B logger"
    csv = pd.read_csv(next(tmp_path.rglob("metrics.csv")))
    for key in ("zh2en/val/target_acc", "zh2en/val/source_acc", "zh2en/val/target_im"):
        assert wandb_metrics[key] == pytest.approx(csv[key].dropna().iloc[-1]), key
    assert csv["epoch"].max() == 1 and wandb_metrics["epoch"] == 1
    assert not any(k.startswith("en2zh/") for k in wandb_metrics)


@pytest.fixture
def offline_wandb(monkeypatch: pytest.MonkeyPatch):
    """W&B in offline mode for one test (settings are read once per process, so restart it around)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb.teardown()
    yield
    monkeypatch.undo()
    wandb.teardown()


def _move_split(cache: Path, language: str, split: str, to: str) -> None:
    manifest_path = cache / "manifest.csv"
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    manifest.loc[(manifest.language == language) & (manifest.split == split), "split"] = to
    manifest.to_csv(manifest_path, index=False)


@pytest.mark.usefixtures("offline_wandb")
def test_a_fit_failing_before_training_leaves_no_wandb_run(cache_copy: Path, tmp_path: Path) -> None:
    """The W&B run starts before the data is checked; a cache without target validation data then
    fails the fit, and the run's empty folder must not stay behind."""
    _move_split(cache_copy, "zh", "val", to="train")
    with pytest.raises(CacheError, match="no val utterances for language zh"):
        _fit([EN2ZH, DANN], cache_copy, tmp_path)
    assert list(tmp_path.rglob("offline-run-*")) == []


@pytest.mark.usefixtures("offline_wandb")
def test_a_fit_starts_its_wandb_run_without_a_deprecation_warning(
    tiny_cache: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning hands wandb.init `anonymous=None`, which wandb 0.31 warns about on every run."""
    passed: dict[str, object] = {}
    real_init = wandb.init
    monkeypatch.setattr(wandb, "init", lambda **kwargs: passed.update(kwargs) or real_init(**kwargs))
    args = [f"--config={EN2ZH}", f"--data.cache_dir={tiny_cache}", f"--trainer.default_root_dir={tmp_path}"]
    cli = training_cli([*args, *FAST], run=False)
    (logger,) = [logger for logger in cli.trainer.loggers if isinstance(logger, WandbLogger)]
    logger.experiment.finish()
    assert passed and "anonymous" not in passed
    assert "anonymous" not in capfd.readouterr().err


def test_test_and_predict_commands_reuse_a_fitted_checkpoint(tiny_cache: Path, tmp_path: Path) -> None:
    _fit([EN2ZH, DANN], tiny_cache, tmp_path / "fit", "--trainer.max_epochs=1")
    checkpoint = tmp_path / "fit" / "checkpoints" / f"best-{DEFAULT_RULE}.ckpt"
    assert checkpoint.is_file()
    configs = [f"--config={EN2ZH}", f"--config={DANN}"]
    common = [*configs, f"--data.cache_dir={tiny_cache}", f"--ckpt_path={checkpoint}", *FAST]
    tested = training_cli(["test", *common, f"--trainer.default_root_dir={tmp_path / 'test'}"])
    metrics = tested.trainer.callback_metrics
    assert {"en2zh/test/target_acc", "en2zh/test/source_f1"} <= set(metrics)
    predicted = training_cli(["predict", *common, f"--trainer.default_root_dir={tmp_path / 'predict'}"])
    batches = predicted.trainer.predict_loop.predictions
    rows = sum(len(batch["probs"]) for batch in batches)
    assert rows == len(predicted.datamodule.manifest)
    assert all(torch.allclose(b["probs"].sum(-1), torch.ones(len(b["probs"]))) for b in batches)

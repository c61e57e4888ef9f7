"""Every adaptation config with every encoder config through `sed-uda fit`, exactly as a user composes
them, for a few steps on the tiny corpus; and one `sed-uda grid` of composed cells.

    sed-uda fit --config configs/experiment/en2zh.yaml --config configs/encoder/X.yaml \\
        --config configs/adaptation/Y.yaml

One run goes through the installed `sed-uda` script in a subprocess (loggers included); the rest call
the same entry point, `sed_uda.cli.main`, in-process.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from sed_uda import training_cli as training_cli_module
from sed_uda.cli import main
from tests.conftest import FAST, REPO

EXPERIMENT = REPO / "configs" / "experiment" / "en2zh.yaml"
ADAPTATIONS = sorted((REPO / "configs" / "adaptation").glob("*.yaml"))
ENCODERS = sorted((REPO / "configs" / "encoder").glob("*.yaml"))
CHEAP_ENCODERS = [path for path in ENCODERS if path.stem != "resnet50"]
COMBINATIONS = [(a, e) for a in ADAPTATIONS for e in CHEAP_ENCODERS] + [
    (a, e) for a in ADAPTATIONS for e in ENCODERS if e.stem == "resnet50" and a.stem == "dann"
]
SHORT = [
    "--trainer.max_steps=2",
    "--data.steps_per_epoch=2",  # one whole epoch: validation runs and the checkpoints are written
    "--trainer.log_every_n_steps=1",  # the test reads the adaptation losses of the last step
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
]


def _fit_args(encoder: Path, adaptation: Path, cache: Path, root: Path) -> list[str]:
    return [
        "fit",
        "--config",
        str(EXPERIMENT),
        "--config",
        str(encoder),
        "--config",
        str(adaptation),
        f"--data.cache_dir={cache}",
        f"--trainer.default_root_dir={root}",
        *FAST,
        *SHORT,
    ]


def test_every_method_and_encoder_is_covered() -> None:
    # Read the folders afresh, not through the globs that built COMBINATIONS.
    adaptations = [name.removesuffix(".yaml") for name in os.listdir(REPO / "configs" / "adaptation")]
    assert {"dann", "source_only", "target_supervised", "mcc"} <= set(adaptations)
    assert {"cnn1d", "stats", "resnet50"} <= {
        name.removesuffix(".yaml") for name in os.listdir(REPO / "configs" / "encoder")
    }
    covered = {f"{a.stem}-{e.stem}" for a, e in COMBINATIONS}
    expected = {f"{a}-{e}" for a in adaptations for e in ("cnn1d", "stats")} | {"dann-resnet50"}
    assert covered == expected


@pytest.mark.parametrize(
    ("adaptation", "encoder"), COMBINATIONS, ids=[f"{a.stem}-{e.stem}" for a, e in COMBINATIONS]
)
def test_fit_composes_the_configs_a_user_types(
    adaptation: Path, encoder: Path, tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []
    real = training_cli_module.training_cli
    monkeypatch.setattr(training_cli_module, "training_cli", lambda *a, **k: built.append(real(*a, **k)))
    # ResNet-50 is meant for a GPU: on CPU, feed it a short image (8 feature channels, not 176).
    cheaper = ["--data.features=[zcr, contrast]"] if encoder.stem == "resnet50" else []
    main([*_fit_args(encoder, adaptation, tiny_cache, tmp_path), "--trainer.logger=false", *cheaper])

    (cli,) = built
    trainer, model = cli.trainer, cli.model
    assert trainer.state.finished and trainer.global_step == 2
    loss = trainer.callback_metrics["en2zh/train/loss"]
    assert math.isfinite(float(loss))
    encoder_class = yaml.safe_load(encoder.read_text())["model"]["encoder"]["class_path"]
    assert f"{type(model.encoder).__module__}.{type(model.encoder).__name__}" == encoder_class
    adapts = bool(model.adaptations)
    assert cli.datamodule.unlabelled_target == adapts
    # Only the stats encoder pools; FixMatch augments the target frames it is given, mixup mixes frames.
    frames_needed = adaptation.stem in ("fixmatch", "mixup")
    assert cli.datamodule.pooled == (encoder.stem == "stats" and not frames_needed)
    for adaptation_loss in model.adaptations:
        assert math.isfinite(float(trainer.callback_metrics[f"en2zh/train/{adaptation_loss.name}_loss"]))
    checkpoints = tmp_path / "checkpoints"
    rule = cli.config.fit.selection.rule
    assert (checkpoints / "last.ckpt").is_file() and (checkpoints / f"best-{rule}.ckpt").is_file()
    saved = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False, mmap=True)
    assert saved["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())


def _sed_uda_script() -> str:
    script = Path(sys.executable).parent / "sed-uda"
    return str(script) if script.is_file() else shutil.which("sed-uda") or pytest.skip("no sed-uda script")


def test_the_sed_uda_script_fits_with_its_loggers(tiny_cache: Path, tmp_path: Path) -> None:
    """The installed console script, as typed in a shell, with the trainer config's CSV logger."""
    adaptation = REPO / "configs" / "adaptation" / "mcc.yaml"
    encoder = REPO / "configs" / "encoder" / "stats.yaml"
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    args = [*_fit_args(encoder, adaptation, tiny_cache, tmp_path), "--trainer.log_every_n_steps=1"]
    done = subprocess.run(
        [_sed_uda_script(), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    (metrics_csv,) = (tmp_path / "csv").glob("version_*/metrics.csv")
    metrics = pd.read_csv(metrics_csv)
    losses = metrics["en2zh/train/loss"].dropna()
    assert len(losses) == 2 and losses.map(math.isfinite).all()
    assert metrics["en2zh/train/mcc_loss"].dropna().map(math.isfinite).all()


def test_the_grid_command_runs_composed_cells(tiny_cache: Path, tmp_path: Path) -> None:
    configs = REPO / "configs"
    overrides = [
        *FAST,
        f"--data.cache_dir={tiny_cache}",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
    ]
    grid_yaml = tmp_path / "tiny_grid.yaml"
    grid_yaml.write_text(
        "name: tiny\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
        "cells:\n"
        f"  - {{adaptation: {configs}/adaptation/coral.yaml, encoder: {configs}/encoder/stats.yaml}}\n"
        f"  - {{adaptation: {configs}/adaptation/target_supervised.yaml,\n"
        f"     encoder: {configs}/encoder/stats.yaml}}\n"
        f"directions: {{en2zh: {configs}/experiment/en2zh.yaml}}\n"
        "seeds: [0]\n"
        "overrides:\n" + "".join(f"  - '{o}'\n" for o in overrides)
    )
    main(["grid", "--config", str(grid_yaml)])
    records = {
        path.parent.parent.name: pd.read_json(path, typ="series")
        for path in (tmp_path / "runs").glob("*/seed0/record.json")
    }
    assert set(records) == {"coral_stats_en2zh", "target_supervised_stats_en2zh"}
    assert bool(records["coral_stats_en2zh"]["adapts"]) is True
    assert records["target_supervised_stats_en2zh"]["labelled_domain"] == "target"
    for record in records.values():
        accuracy = record["selection"][record["primary_rule"]]["test"]["en2zh/test/target_acc"]
        assert 0 <= accuracy <= 1

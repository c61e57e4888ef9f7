"""The `sed-uda` console script: one entry point for toolkit commands and LightningCLI training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sed_uda.cli import _underscored, main
from tests.conftest import REPO


def test_overview_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    text = capsys.readouterr().out
    for command in (
        "synth",
        "prepare",
        "probe",
        "grid",
        "table",
        "demo",
        "fit",
        "validate",
        "test",
        "predict",
    ):
        assert f"{command}" in text


def test_dashed_options_are_accepted() -> None:
    assert _underscored(["synth", "--speakers-per-language", "3", "--out=a-b"]) == [
        "synth",
        "--speakers_per_language",
        "3",
        "--out=a-b",
    ]


def test_print_config_shows_composed_experiment(tmp_path: Path) -> None:
    config = REPO / "configs" / "experiment" / "dann_resnet50_zh2en.yaml"
    out = subprocess.run(
        [sys.executable, "-m", "sed_uda.cli", "fit", "--config", str(config), "--print_config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    printed = yaml.safe_load(out)
    assert printed["model"]["encoder"] == "resnet50"
    assert printed["model"]["method"] == "dann"
    assert (printed["data"]["source"], printed["data"]["target"]) == ("zh", "en")
    assert printed["trainer"]["precision"] == "bf16-mixed"


def test_prepare_on_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sed_uda.cli",
            "prepare",
            "--root",
            str(tmp_path / "nope"),
            "--cache",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert str(tmp_path / "nope") in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "c" / "meta.json").exists()

"""The README's "add your own method" example works as printed: its file, its YAML and its `sed-uda fit`
command, nothing else."""

from __future__ import annotations

import math
import re
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest

import sed_uda.adaptation
from sed_uda.cli import main
from tests.conftest import FAST, REPO

pytestmark = pytest.mark.slow


def _section() -> str:
    return (REPO / "README.md").read_text().split("## 6. Add your own method", 1)[1].split("\n## ", 1)[0]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), flags=re.S)


def test_readme_method_trains_through_the_cli_from_its_file_and_yaml(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, config = _blocks("python")[0], _blocks("yaml")[0]
    code_path = re.match(r"# (\S+\.py)\n", code).group(1)
    config_path = re.match(r"# (\S+\.yaml)\n", config).group(1)
    assert code_path == "sed_uda/adaptation/entropy_min.py"
    # The file goes where the README says, seen through a folder added to the package's path, so the
    # test leaves the source tree alone.
    (tmp_path / "adaptation").mkdir()
    (tmp_path / "adaptation" / Path(code_path).name).write_text(code)
    monkeypatch.setattr(
        sed_uda.adaptation, "__path__", [*sed_uda.adaptation.__path__, str(tmp_path / "adaptation")]
    )
    monkeypatch.delitem(sys.modules, "sed_uda.adaptation.entropy_min", raising=False)
    (tmp_path / Path(config_path).name).write_text(config)

    command = shlex.split(re.search(r"`(sed-uda fit [^`]*)`", _section()).group(1))
    args = [str(tmp_path / Path(config_path).name) if arg == config_path else arg for arg in command[1:]]
    main(
        [
            *args,
            f"--data.cache_dir={tiny_cache}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            "--trainer.max_steps=3",
            "--data.steps_per_epoch=3",
            "--trainer.log_every_n_steps=1",
            "--trainer.logger=[{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: .}}]",
            *FAST,
        ]
    )
    metrics = pd.read_csv(next((tmp_path / "run").rglob("metrics.csv")))
    losses = metrics["en2zh/train/entmin_loss"].dropna()
    assert len(losses) == 3 and losses.map(math.isfinite).all()

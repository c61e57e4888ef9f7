"""The README's "add your own method" example works as printed: its file and its YAML, nothing else."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
import yaml

from sed_uda.models.components.stats import StatsEncoder
from sed_uda.models.uda import UDAModule
from tests.conftest import REPO


def _blocks(language: str) -> list[str]:
    section = (REPO / "README.md").read_text().split("## 6. Add your own method", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_readme_method_trains_from_its_yaml(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    code, config = _blocks("python")[0], yaml.safe_load(_blocks("yaml")[0])
    entry = config["model"]["adaptations"][0]
    module_name, class_name = entry["class_path"].rsplit(".", 1)
    package = tmp_path / "extra"
    package.mkdir()
    (package / "entropy_min.py").write_text(code)
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.delitem(sys.modules, "entropy_min", raising=False)
    assert module_name == "sed_uda.adaptation.entropy_min"
    method = getattr(__import__("entropy_min"), class_name)(**entry["init_args"])

    torch.manual_seed(0)
    model = UDAModule(encoder=StatsEncoder(6, hidden=8, embedding_dim=8), adaptations=[method])
    labelled = {"x": torch.randn(4, 6, 10), "lengths": torch.full((4,), 10), "y": torch.tensor([0, 1, 2, 3])}
    unlabelled = {"x": torch.randn(4, 6, 10), "lengths": torch.full((4,), 10)}
    losses = model.compute_losses(labelled, unlabelled)
    assert torch.isfinite(losses["entmin_loss"])
    assert losses["loss"] == losses["class_loss"] + 0.1 * losses["entmin_loss"]

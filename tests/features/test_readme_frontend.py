"""The README's "add your own front end" example works as printed: its file and its YAML, nothing else."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sed_uda.features.store import load_cache
from sed_uda.inference.audio import recording_features
from sed_uda.inference.model import load_model
from tests.conftest import REPO
from tests.features.conftest import fit_one_epoch
from tests.test_cli import sed_uda


def _blocks(language: str) -> list[str]:
    section = (REPO / "README.md").read_text().split("**Add your own front end**", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_readme_front_end_prepares_trains_and_classifies(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, config_text = _blocks("python")[0], _blocks("yaml")[0]
    file_name = code.splitlines()[0].removeprefix("# ")
    config_name = config_text.splitlines()[0].removeprefix("# ")
    assert file_name == "sed_uda/features/frontends/rms.py" and config_name == "configs/frontend/rms.yaml"
    (tmp_path / "rms.py").write_text(code)
    (tmp_path / "configs" / "frontend").mkdir(parents=True)
    (tmp_path / config_name).write_text(config_text)
    module_name = yaml.safe_load(config_text)["class_path"].rsplit(".", 1)[0]
    spec = importlib.util.spec_from_file_location(module_name, tmp_path / "rms.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)  # `--front-end rms` is found in ./configs/frontend/

    # the example module lives only in this process, so extraction runs here (--workers 1)
    argv = [
        "prepare",
        "--root",
        str(tiny_corpus),
        "--cache",
        "data/cache_rms",
        "--front-end",
        "rms",
        "--workers",
        "1",
    ]
    status, _, err = sed_uda(argv, capsys)
    assert status == 0, err
    cache = load_cache(tmp_path / "data" / "cache_rms")
    assert cache.blocks == {"rms": 1, "rms_db": 1} and cache.front_end.hop_length == 160

    ckpt = fit_one_epoch("data/cache_rms", tmp_path / "run", ["encoder/stats.yaml"])
    wav = tiny_corpus / cache.manifest["path"][0]
    np.testing.assert_array_equal(recording_features(wav, load_model(ckpt).front_end)[0], cache.utterance(0))
    status, out, err = sed_uda(["classify", "--ckpt", str(ckpt), str(wav)], capsys)
    assert status == 0 and "predicted emotions" in out, err

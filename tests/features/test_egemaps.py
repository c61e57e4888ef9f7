"""The eGeMAPS front end end to end: prepare, fit and classify see the same openSMILE frames."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sed_uda.features.frontends.egemaps import Egemaps
from sed_uda.features.store import load_cache
from sed_uda.inference.audio import recording_features
from sed_uda.inference.model import load_model
from tests.features.conftest import fit_one_epoch
from tests.features.test_librosa_frames import _speechlike
from tests.test_cli import one_line, sed_uda


def test_lld_are_25_channels_every_10_ms_and_functionals_one_88_vector() -> None:
    y = _speechlike(24_000, 16_000)
    lld, functionals = Egemaps(level="lld").extract(y), Egemaps(level="functionals").extract(y)
    assert lld.dtype == np.float32 and lld.shape[1] == 25 and abs(len(lld) - 150) <= 5
    assert functionals.shape == (1, 88) and np.isfinite(functionals).all()


@pytest.mark.parametrize("name", ["egemaps", "egemaps_functionals"])
def test_prepare_fit_classify_with_egemaps(name: str, tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "cache"
    status, out, err = sed_uda(
        ["prepare", "--root", str(tiny_corpus), "--cache", str(cache), "--front-end", name, "--workers", "2"],
        capsys,
    )
    assert status == 0, err
    loaded = load_cache(cache)
    ckpt = fit_one_epoch(cache, tmp_path / "run", ["encoder/stats.yaml"], "--data.crop_frames=512")
    model = load_model(ckpt)
    assert model.front_end == loaded.front_end

    row = 0
    wav = tiny_corpus / loaded.manifest["path"][row]
    frames, _ = recording_features(wav, model.front_end)
    np.testing.assert_array_equal(frames, loaded.utterance(row))
    status, out, err = sed_uda(
        ["classify", "--ckpt", str(ckpt), str(wav), "--out", str(tmp_path / "p.csv")], capsys
    )
    assert status == 0, err
    assert (tmp_path / "p.csv").read_text().count("\n") == 2


def test_without_opensmile_prepare_says_how_to_install_it(monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "opensmile", None)
    status, _, err = sed_uda(["prepare", "--front-end", "egemaps"], capsys)
    line = one_line(err, "prepare")
    assert status == 1 and "pip install 'sed_uda[egemaps]'" in line and "research" in line

"""Front ends as components: chosen by name or YAML, recorded in the cache, rebuilt when they change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xxhash

from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.features.cache import prepare_cache
from sed_uda.features.frontends import FrontEndError, build
from sed_uda.features.frontends.choose import available, choose_front_end
from sed_uda.features.frontends.egemaps import Egemaps
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.store import FEATURES, META, OFFSETS, load_cache
from tests.test_cli import one_line, sed_uda

BEFORE_FRONT_ENDS = {FEATURES: "48c06fd57761f203", OFFSETS: "e2ab5fbc5f8ce9d8"}
"""xxh3-64 of the tiny corpus's cache files as `prepare` wrote them before front ends were components
(commit 34861db, `prepare_cache(tiny_corpus, cache, workers=1)` on this project's pinned librosa/numpy)."""


def test_librosa_front_end_writes_the_cache_of_before_bit_for_bit(tiny_cache: Path) -> None:
    digests = {name: xxhash.xxh3_64_hexdigest((tiny_cache / name).read_bytes()) for name in BEFORE_FRONT_ENDS}
    assert digests == BEFORE_FRONT_ENDS


def test_a_cache_of_before_front_ends_loads_as_librosa_and_is_rebuilt_to_the_same_bytes(
    cache_copy: Path, tiny_corpus: Path, capsys
) -> None:
    meta = json.loads((cache_copy / META).read_text())
    old = {k: v for k, v in meta.items() if k not in ("front_end", "front_end_versions", "blocks")}
    old |= {"format": 1, "feature_config": meta["front_end"]["init_args"]}
    (cache_copy / META).write_text(json.dumps(old))
    features = (cache_copy / FEATURES).read_bytes()
    assert load_cache(cache_copy).front_end == LibrosaFrames()
    assert CrossLingualDataModule(str(cache_copy)).features == ("zcr", "mfcc", "mel", "contrast")

    capsys.readouterr()
    prepare_cache(tiny_corpus, cache_copy)
    assert "rebuilding: cache format changed" in capsys.readouterr().out
    assert (cache_copy / FEATURES).read_bytes() == features
    assert json.loads((cache_copy / META).read_text())["front_end"] == LibrosaFrames().config()


def test_every_config_in_configs_frontend_builds_and_names_its_class() -> None:
    assert {"librosa", "torch", "egemaps", "egemaps_functionals", "ssl"} <= set(available())
    for name in available():
        front_end = choose_front_end(name)
        assert build(front_end.config()) == front_end
    assert choose_front_end("egemaps_functionals") == Egemaps(level="functionals")
    assert choose_front_end("librosa") == LibrosaFrames()


def test_changing_the_front_end_rebuilds_and_is_said(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    prepare_cache(tiny_corpus, tmp_path / "cache", front_end=LibrosaFrames(n_mels=64, n_mfcc=20))
    capsys.readouterr()
    prepare_cache(tiny_corpus, tmp_path / "cache", workers=2, front_end=Egemaps(level="functionals"))
    assert "rebuilding: front end changed (LibrosaFrames -> Egemaps" in capsys.readouterr().out
    cache = load_cache(tmp_path / "cache")
    assert cache.front_end == Egemaps(level="functionals") and cache.blocks == {"functionals": 88}
    assert cache.features.shape == (len(cache), 88) and set(cache.lengths) == {1}
    assert cache.meta["front_end_versions"]["feature_set"] == "eGeMAPSv02"


def test_data_blocks_of_another_front_end_are_refused_with_the_fix(tiny_corpus: Path, tmp_path: Path) -> None:
    prepare_cache(tiny_corpus, tmp_path / "cache", workers=2, front_end=Egemaps(level="functionals"))
    with pytest.raises(ValueError, match=r"Egemaps front end .*\(functionals\).*--data.features=null"):
        CrossLingualDataModule(str(tmp_path / "cache"), features=["zcr", "mfcc"])
    assert CrossLingualDataModule(str(tmp_path / "cache")).num_channels == 88


@pytest.mark.parametrize(
    ("front_end", "says"),
    [
        (
            "egemap",
            "--front-end egemap: no such front end; choose one of egemaps, egemaps_functionals, librosa",
        ),
        ("missing.yaml", "--front-end missing.yaml: no such front end"),
    ],
)
def test_unknown_front_ends_are_one_line_with_the_choices(front_end: str, says: str, capsys) -> None:
    status, _, err = sed_uda(["prepare", "--front-end", front_end], capsys)
    assert status == 2 and says in one_line(err, "prepare")


def test_a_yaml_with_a_bad_class_path_or_argument_is_one_line(tmp_path: Path, capsys) -> None:
    bad_class = tmp_path / "bad_class.yaml"
    bad_class.write_text("class_path: sed_uda.features.frontends.nope.Nope\n")
    status, _, err = sed_uda(["prepare", "--front-end", str(bad_class)], capsys)
    assert status == 2 and "cannot be imported" in one_line(err, "prepare")
    bad_argument = tmp_path / "bad_argument.yaml"
    bad_argument.write_text(
        "class_path: sed_uda.features.frontends.egemaps.Egemaps\ninit_args: {level: frames}\n"
    )
    status, _, err = sed_uda(["prepare", "--front-end", str(bad_argument)], capsys)
    assert status == 2 and "level='frames': choose one of lld, functionals" in one_line(err, "prepare")


def test_device_on_a_cpu_only_front_end_or_machine_is_one_line(monkeypatch, capsys) -> None:  # noqa: ANN001
    status, _, err = sed_uda(["prepare", "--device", "cuda"], capsys)
    assert "the LibrosaFrames front end computes on the CPU only" in one_line(err, "prepare")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    status, _, err = sed_uda(["prepare", "--front-end", "torch", "--device", "cuda"], capsys)
    assert status == 2 and "no CUDA GPU is visible" in one_line(err, "prepare")


def test_build_refuses_what_is_not_a_front_end() -> None:
    with pytest.raises(FrontEndError, match="not a sed_uda FrontEnd"):
        build({"class_path": "pathlib.Path"})
    with pytest.raises(FrontEndError, match="unexpected keyword argument 'n_bins'"):
        build({"class_path": "sed_uda.features.frontends.librosa.LibrosaFrames", "init_args": {"n_bins": 3}})

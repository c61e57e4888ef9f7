"""`sed-uda grid`: every cell once, records complete, an interrupted grid redoes only what is missing,
and a cell re-runs exactly when one of its config files or the grid's overrides change."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from sed_uda.errors import UserError
from sed_uda.experiments import grid as grid_module
from sed_uda.experiments.grid import Cell, GridSpec, check_grid, load_grid, run_grid
from sed_uda.experiments.table import read_records
from sed_uda.models.selection.rules import RULES
from tests.conftest import FAST, REPO

CONFIGS = REPO / "configs"


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A private copy of configs/ that a test may edit (experiment files include their neighbours)."""
    return Path(shutil.copytree(CONFIGS, tmp_path / "configs"))


def _spec(configs: Path, tiny_cache: Path, runs_dir: Path) -> GridSpec:
    return GridSpec(
        name="tiny",
        runs_dir=runs_dir,
        cells=[
            Cell(configs / "adaptation" / "dann.yaml", configs / "encoder" / "cnn1d.yaml"),
            Cell(configs / "adaptation" / "source_only.yaml", configs / "encoder" / "stats.yaml"),
        ],
        directions={"en2zh": configs / "experiment" / "en2zh.yaml"},
        seeds=[0],
        overrides=[
            *FAST,
            f"--data.cache_dir={tiny_cache}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
        ],
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The run folders the grid trains, in order (each call still trains for real)."""
    made: list[Path] = []
    real = grid_module.run_experiment

    def counting(configs, run_dir, overrides, labels=None, rules=tuple(RULES)):  # noqa: ANN001, ANN202
        made.append(Path(run_dir))
        return real(configs, run_dir, overrides, labels=labels, rules=rules)

    monkeypatch.setattr(grid_module, "run_experiment", counting)
    return made


def test_grid_runs_every_cell_then_skips_resumes_and_reruns_what_changed(
    configs: Path, tiny_cache: Path, tmp_path: Path, calls: list[Path], capsys: pytest.CaptureFixture
) -> None:
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    dann_dir = spec.runs_dir / "dann_cnn1d_en2zh" / "seed0"
    source_dir = spec.runs_dir / "source_only_stats_en2zh" / "seed0"

    records = run_grid(spec)
    assert calls == [dann_dir, source_dir]
    assert [(r["method"], r["encoder"], r["adapts"]) for r in records] == [
        ("dann", "cnn1d", True),
        ("source_only", "stats", False),
    ]
    for record in records:
        assert set(record["selection"]) == set(RULES)
        assert record["selection"]["target_oracle"]["uses_target_labels"] is True
        assert "en2zh/test/target_acc" in record["selection"]["source_acc"]["test"]
    first_ids = [r["run_id"] for r in records]

    calls.clear()
    assert [r["run_id"] for r in run_grid(spec)] == first_ids
    assert calls == [], "an unchanged grid must skip every finished cell"

    (dann_dir / "record.json").unlink()  # interrupted before its record was written
    calls.clear()
    run_grid(spec)
    assert calls == [dann_dir]
    assert sorted(p.name for p in (dann_dir / "checkpoints").iterdir()) == sorted(
        [f"best-{rule}.ckpt" for rule in RULES] + ["last.ckpt"]
    ), "the redo must start from a clean folder, not next to the interrupted run's files"

    dann_yaml = configs / "adaptation" / "dann.yaml"
    dann_yaml.write_text(dann_yaml.read_text().replace("weight: 1.0", "weight: 0.5"))
    calls.clear()
    capsys.readouterr()
    changed = run_grid(spec)
    assert calls == [dann_dir], "a changed config file re-runs the cells that use it, only those"
    assert changed[0]["run_id"] != first_ids[0] and changed[1]["run_id"] == first_ids[1]
    kept = dann_dir.with_name(f"seed0.outdated-{records[0]['settings_id']}")
    assert json.loads((kept / "record.json").read_text())["run_id"] == first_ids[0], "the old run is kept"
    said = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert f"settings or feature cache changed: to re-run; the old run moves to {kept}" in said
    assert len(read_records(spec.runs_dir)) == 2, "tables read current runs, not the ones kept aside"


def test_a_changed_source_file_of_a_run_reruns_it_and_dry_run_says_so(
    configs: Path, tiny_cache: Path, tmp_path: Path, calls: list[Path], capsys: pytest.CaptureFixture
) -> None:
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    spec.cells = spec.cells[:1]  # DANN
    (record,) = run_grid(spec)
    assert "sed_uda/adaptation/dann.py" in record["code"] and "sed_uda/models/uda.py" in record["code"]
    path = spec.runs()[0].run_dir / "record.json"
    # As if dann.py had been edited since the run: its recorded hash no longer matches the file.
    path.write_text(json.dumps(record | {"code": record["code"] | {"sed_uda/adaptation/dann.py": "0" * 16}}))
    capsys.readouterr()
    check_grid(spec)
    assert "code changed (sed_uda/adaptation/dann.py): to re-run" in capsys.readouterr().out
    calls.clear()
    run_grid(spec)
    assert calls == [spec.runs()[0].run_dir]


def test_a_changed_override_reruns_the_cell(
    configs: Path, tiny_cache: Path, tmp_path: Path, calls: list[Path]
) -> None:
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    spec.cells = spec.cells[1:]  # the cheap source-only stats cell
    (first,) = run_grid(spec)
    spec.overrides = [*spec.overrides, "--model.lr=0.002"]
    calls.clear()
    (second,) = run_grid(spec)
    assert len(calls) == 1 and second["run_id"] != first["run_id"]
    assert "--model.lr=0.002" in second["overrides"]
    calls.clear()
    run_grid(spec)
    assert calls == []


def test_identity_follows_the_resolved_configuration(configs: Path, tmp_path: Path) -> None:
    spec = _spec(configs, tmp_path / "no_cache", tmp_path / "runs")
    before = spec.runs()[0].run_id  # identities are computed when read
    trainer = configs / "trainer" / "cpu.yaml"  # included by the experiment config
    trainer.write_text(trainer.read_text().replace("log_every_n_steps: 10", "log_every_n_steps: 7"))
    changed = spec.runs()[0].run_id
    assert "log_every_n_steps: 7" in trainer.read_text() and changed != before
    data = configs / "data" / "en2zh.yaml"  # a value the grid's overrides replace, and a comment
    data.write_text("# edited\n" + data.read_text().replace("batch_size: 64", "batch_size: 7"))
    assert spec.runs()[0].run_id == changed, "the resolved configuration is the same: so is the run"


def test_identity_follows_the_cache_content_not_its_place(
    configs: Path, cache_copy: Path, tmp_path: Path
) -> None:
    spec = _spec(configs, cache_copy, tmp_path / "runs")
    before = spec.runs()[0].run_id
    meta_path = cache_copy / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"corpus_root": "/moved/elsewhere", "created": "2030-01-01"}))
    assert spec.runs()[0].run_id == before
    meta_path.write_text(json.dumps(meta | {"corpus_hash": "another corpus"}))
    assert spec.runs()[0].run_id != before


def test_seeds_of_a_cell_share_its_settings_but_not_its_identity(
    configs: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    spec.seeds = [0, 1]
    first, second = [run for run in spec.runs() if run.cell == spec.cells[0]]
    assert first.settings_id == second.settings_id  # so tables pool the seeds without a warning
    assert first.run_id != second.run_id
    assert "--seed_everything=1" in second.arguments and "--data.seed=1" in second.arguments


def test_grid_names_missing_config_files(configs: Path, tiny_cache: Path, tmp_path: Path) -> None:
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    spec.cells = [Cell(configs / "adaptation" / "dann.yaml", configs / "encoder" / "transformer.yaml")]
    with pytest.raises(FileNotFoundError, match="transformer.yaml"):
        run_grid(spec)


def test_grid_config_files_are_read_as_paths(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(
        "name: mine\nruns_dir: runs/mine\n"
        "cells:\n  - {adaptation: configs/adaptation/mmd.yaml, encoder: configs/encoder/stats.yaml}\n"
        "directions: {zh2en: configs/experiment/zh2en.yaml}\nseeds: [3, 4]\n"
    )
    spec = load_grid(path)
    assert spec.cells == [Cell(Path("configs/adaptation/mmd.yaml"), Path("configs/encoder/stats.yaml"))]
    assert spec.directions == {"zh2en": Path("configs/experiment/zh2en.yaml")}
    assert spec.seeds == [3, 4] and spec.runs_dir == "runs/mine"


def test_a_cells_own_overrides_reach_its_runs_only_after_the_grids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sed_uda.cli import main

    path = tmp_path / "grid.yaml"
    path.write_text(
        "cells:\n  - {adaptation: configs/adaptation/dann.yaml, encoder: configs/encoder/stats.yaml}\n"
        "  - {adaptation: configs/adaptation/dann.yaml, encoder: configs/encoder/cnn1d.yaml,\n"
        "     overrides: [--trainer.precision=bf16-mixed, --trainer.max_epochs=3]}\n"
        "directions: {en2zh: configs/experiment/en2zh.yaml}\noverrides: [--trainer.max_epochs=2]\n"
    )
    monkeypatch.chdir(REPO)
    given: list[GridSpec] = []
    monkeypatch.setattr(grid_module, "run_grid", lambda spec, **_: given.append(spec))
    main(["grid", "--config", str(path)])  # as typed: the command line parser reads the cells
    for spec in (load_grid(path), *given):
        stats, cnn = spec.runs()
        assert stats.overrides == ("--trainer.max_epochs=2",)
        assert cnn.overrides == (
            "--trainer.max_epochs=2",
            "--trainer.precision=bf16-mixed",
            "--trainer.max_epochs=3",
        )
    assert len(given) == 1


@pytest.mark.parametrize("path", sorted((CONFIGS / "grid").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_grids_point_at_existing_configs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # grid configs name files relative to the repository root
    runs = load_grid(path).runs()
    assert runs and all(config.is_file() for run in runs for config in run.configs)
    assert len({run.run_dir for run in runs}) == len(runs)


def test_a_grid_over_corpora_runs_each_cell_on_each_and_the_table_gives_each_and_their_mean(
    configs: Path, tiny_cache: Path, tmp_path: Path, calls: list[Path]
) -> None:
    from sed_uda.experiments.table import write_tables

    other = Path(shutil.copytree(tiny_cache, tmp_path / "other_cache"))
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    spec.cells = spec.cells[1:]
    spec.corpora = {"seed0": tiny_cache, "heldout": other}
    records = run_grid(spec)
    assert calls == [spec.runs_dir / c / "source_only_stats_en2zh" / "seed0" for c in ("seed0", "heldout")]
    assert [r["corpus"] for r in records] == ["seed0", "heldout"]
    assert [r["cache_dir"] for r in records] == [str(tiny_cache), str(other)]  # the corpus's cache wins

    text = write_tables(spec.runs_dir, tmp_path / "table.md")
    assert "mean over 2 corpora (heldout, seed0)" in text
    assert "### Corpus seed0" in text and "### Corpus heldout" in text
    # the same cache twice: the mean table and both corpora's agree, baselines included
    for start in ("| logreg | pooled stats |", "| source_only | stats |"):
        rows = [line for line in text.splitlines() if line.startswith(start)]
        numbers = {tuple(re.findall(r"\d\.\d{3}(?! ±)", row.replace(" ± 0.000", ""))) for row in rows}
        assert len(rows) == 3 and len(numbers) == 1, rows

    spec.corpora["missing"] = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="corpus 'missing' names .*nowhere.*sed-uda prepare"):
        check_grid(spec)  # a dry run says it too, before resolving anything


def test_cell_variants_become_runs_of_their_own_with_their_overrides(configs: Path, tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.yaml"
    weight = "--model.adaptations.init_args.weight"
    grid_file.write_text(
        "name: hp\nruns_dir: runs/hp\n"
        f"cells:\n  - adaptation: {configs}/adaptation/aad.yaml\n    encoder: {configs}/encoder/stats.yaml\n"
        f"    variants: {{w1: [], w3: ['{weight}=3']}}\n"
        f"directions: {{zh2en: {configs}/experiment/zh2en.yaml}}\nseeds: [0]\n"
    )
    runs = load_grid(grid_file).runs()
    assert [(r.run_dir.parent.name, r.variant) for r in runs] == [
        ("aad@w1_stats_zh2en", "w1"),
        ("aad@w3_stats_zh2en", "w3"),
    ]
    assert f"{weight}=3" in runs[1].arguments and not any(weight in a for a in runs[0].arguments)
    assert runs[0].settings_id != runs[1].settings_id
    assert len({*runs, *load_grid(grid_file).runs()}) == 2  # the grid keys its plan by run


def test_a_grid_asking_for_fewer_rules_records_those_and_asking_for_more_reruns(
    configs: Path, tiny_cache: Path, tmp_path: Path, calls: list[Path], capsys: pytest.CaptureFixture
) -> None:
    spec = _spec(configs, tiny_cache, tmp_path / "runs")
    spec.cells, spec.rules = spec.cells[1:], ["target_im"]
    (record,) = run_grid(spec)
    assert set(record["selection"]) == {"target_im"} and record["rules"] == ["target_im"]
    assert len(run_grid(spec)) == 1 and len(calls) == 1  # done: not re-run
    spec.rules = ["target_im", "source_acc"]
    capsys.readouterr()
    (again,) = run_grid(spec)
    assert "recorded without the rules source_acc: to re-run" in capsys.readouterr().out
    assert set(again["selection"]) == {"target_im", "source_acc"} and len(calls) == 2
    spec.rules = ["target_im", "best_guess"]
    with pytest.raises(UserError, match=r"unknown selection rules \['best_guess'\]"):
        spec.runs()

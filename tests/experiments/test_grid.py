"""`sed-uda grid`: every cell once, records complete, an interrupted grid redoes only what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sed_uda.experiments import grid as grid_module
from sed_uda.experiments.grid import Cell, GridSpec, load_grid, run_grid
from sed_uda.experiments.selection import RULES
from tests.conftest import FAST, REPO


@pytest.fixture
def spec(tiny_cache: Path, tmp_path: Path) -> GridSpec:
    return GridSpec(
        name="tiny",
        runs_dir=tmp_path / "runs",
        experiments_dir=REPO / "configs" / "experiment",
        cells=[Cell("dann", "cnn1d"), Cell("source_only", "cnn1d")],
        directions=["en2zh"],
        seeds=[0, 1],
        overrides=[
            *FAST,
            f"--data.cache_dir={tiny_cache}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
        ],
    )


def test_grid_runs_every_cell_then_resumes(spec: GridSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = grid_module.run_experiment

    def counting(configs, run_dir, overrides):  # noqa: ANN001, ANN202
        calls.append(run_dir)
        return real(configs, run_dir, overrides)

    monkeypatch.setattr(grid_module, "run_experiment", counting)
    records = run_grid(spec)
    assert len(calls) == 4
    assert {(r["method"], r["seed"]) for r in records} == {
        (m, s) for m in ("dann", "source_only") for s in (0, 1)
    }
    for record in records:
        assert set(record["selection"]) == set(RULES)
        assert record["selection"]["target_oracle"]["uses_target_labels"] is True
        assert "en2zh/test/target_acc" in record["selection"]["source_acc"]["test"]

    interrupted = spec.runs_dir / "dann_cnn1d_en2zh" / "seed1"
    (interrupted / "record.json").unlink()
    calls.clear()
    assert len(run_grid(spec)) == 4
    assert calls == [interrupted]
    assert sorted(p.name for p in (interrupted / "checkpoints").iterdir()) == sorted(
        [f"best-{rule}.ckpt" for rule in RULES] + ["last.ckpt"]
    ), "the redo must start from a clean folder, not next to the interrupted run's files"


def test_grid_names_missing_experiment_configs(spec: GridSpec) -> None:
    spec.cells = [Cell("dann", "transformer")]
    with pytest.raises(FileNotFoundError, match="dann_transformer_en2zh.yaml"):
        run_grid(spec)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "grid").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_grids_point_at_existing_configs(path: Path) -> None:
    spec = load_grid(path)
    spec.experiments_dir = REPO / spec.experiments_dir
    assert all(config.is_file() for config, _, _ in spec.runs())

"""Experiment grids: methods x encoders x directions x seeds, each cell an ordinary fit + test run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from sed_uda.experiments.runner import read_record, run_experiment

console = Console()


@dataclass(frozen=True)
class Cell:
    """One row of the results table: a method trained with an encoder."""

    method: str
    encoder: str


@dataclass
class GridSpec:
    """What a grid runs; `experiments_dir/<method>_<encoder>_<direction>.yaml` configures each cell."""

    name: str = "poster"
    runs_dir: Path = Path("runs/poster")
    experiments_dir: Path = Path("configs/experiment")
    cells: list[Cell] | None = None
    directions: list[str] | None = None
    seeds: list[int] | None = None
    overrides: list[str] | None = field(default=None)

    def runs(self) -> list[tuple[Path, Path, int]]:
        """(experiment config, run dir, seed) of every run, in table order."""
        cells = self.cells or [Cell("dann", "cnn1d")]
        out = []
        for cell in cells:
            for direction in self.directions or ["en2zh", "zh2en"]:
                name = f"{cell.method}_{cell.encoder}_{direction}"
                config = Path(self.experiments_dir) / f"{name}.yaml"
                for seed in self.seeds or [0]:
                    out.append((config, Path(self.runs_dir) / name / f"seed{seed}", seed))
        return out


def run_grid(spec: GridSpec) -> list[dict]:
    """Run every unfinished cell of the grid and return all records (finished ones are reused)."""
    runs = spec.runs()
    missing = [config for config, _, _ in runs if not config.is_file()]
    if missing:
        raise FileNotFoundError(
            "grid needs experiment configs that do not exist: "
            + ", ".join(map(str, sorted(set(missing))))
            + f". Add them to {spec.experiments_dir} or remove those cells/directions from the grid."
        )
    records = []
    for index, (config, run_dir, seed) in enumerate(runs, start=1):
        record = read_record(run_dir)
        label = f"[{index}/{len(runs)}] {spec.name}: {run_dir.parent.name} seed {seed}"
        if record is not None:
            console.print(f"{label} [green]done already[/green], skipped")
        else:
            console.rule(label)
            if run_dir.exists():  # no record: an interrupted run, whose files would confuse the redo
                console.print(f"removing the unfinished run in {run_dir}")
                shutil.rmtree(run_dir)
            overrides = [f"--seed_everything={seed}", f"--data.seed={seed}", *(spec.overrides or [])]
            record = run_experiment([config], run_dir, overrides)
        records.append(record)
    return records


def load_grid(path: Path) -> GridSpec:
    """Read a grid YAML (the same keys `sed-uda grid --config` takes)."""
    from omegaconf import OmegaConf

    if not Path(path).is_file():
        raise FileNotFoundError(f"grid config {path} does not exist (see configs/grid/ for examples)")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    data["cells"] = [Cell(**c) for c in data.get("cells") or []] or None
    return GridSpec(**data)

"""Experiment grids: (adaptation x encoder) cells x directions x seeds, each an ordinary fit + test run.

A run composes config files by concern: the direction's experiment config (trainer, model defaults,
data, selection), an encoder config and an adaptation config, plus the grid's overrides. Cells name
their files explicitly and are named after them (`dann_cnn1d_en2zh/seed0`). A cell's identity is a
hash of the contents of its files, its overrides and its seed: a finished run is reused only while
that identity holds, so a changed setting re-runs the cells it touches.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from sed_uda.errors import UserError
from sed_uda.experiments.runner import read_record, run_experiment

console = Console()


@dataclass(frozen=True)
class Cell:
    """One row of the results table: an adaptation config trained with an encoder config."""

    adaptation: Path
    encoder: Path

    @property
    def method(self) -> str:
        return Path(self.adaptation).stem

    @property
    def encoder_name(self) -> str:
        return Path(self.encoder).stem


@dataclass(frozen=True)
class Run:
    """One fit of a grid: its config files (in merge order), overrides, seed and folder."""

    cell: Cell
    direction: str
    seed: int
    configs: tuple[Path, ...]
    overrides: tuple[str, ...]
    run_dir: Path

    @property
    def arguments(self) -> tuple[str, ...]:
        """The LightningCLI overrides of this run: its seed, then the grid's overrides."""
        return (f"--seed_everything={self.seed}", f"--data.seed={self.seed}", *self.overrides)

    @property
    def settings_id(self) -> str:
        """Hash of everything that defines the run except its seed (runs of one table cell share it):
        its config files, the files they include, and its overrides."""
        payload = [p.read_text() for p in _with_includes(self.configs)] + list(self.overrides)
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    @property
    def run_id(self) -> str:
        return f"{self.settings_id}-seed{self.seed}"


@dataclass
class GridSpec:
    """What a grid runs. `directions` maps a direction name to its experiment config."""

    name: str = "grid"
    runs_dir: Path = Path("runs/grid")
    cells: list[Cell] = field(default_factory=list)
    directions: dict[str, Path] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: list[str] = field(default_factory=list)

    def runs(self) -> list[Run]:
        """Every run, in table order; a clear error naming config files that do not exist."""
        files = [p for c in self.cells for p in (c.adaptation, c.encoder)] + list(self.directions.values())
        missing = sorted({str(p) for p in files if not Path(p).is_file()})
        if missing:
            raise FileNotFoundError(
                f"grid {self.name!r} names config files that do not exist: {', '.join(missing)}. "
                "Fix the paths in the grid config (they are relative to where you run sed-uda)."
            )
        if not self.cells or not self.directions:
            raise UserError(
                f"grid {self.name!r} needs at least one cell and one direction: give them in the grid config "
                "(see configs/grid/demo.yaml)"
            )
        out = []
        for cell in self.cells:
            for direction, experiment in self.directions.items():
                for seed in self.seeds:
                    out.append(
                        Run(
                            cell,
                            direction,
                            seed,
                            (Path(experiment), Path(cell.encoder), Path(cell.adaptation)),
                            tuple(self.overrides),
                            Path(self.runs_dir)
                            / f"{cell.method}_{cell.encoder_name}_{direction}"
                            / f"seed{seed}",
                        )
                    )
        return out


def _with_includes(configs: tuple[Path, ...]) -> list[Path]:
    """The config files and, depth first, every YAML file they name (`trainer: ../trainer/cpu.yaml`)."""
    from omegaconf import OmegaConf

    found: list[Path] = []

    def visit(path: Path) -> None:
        if path in found:
            return
        found.append(path)
        values = OmegaConf.to_container(OmegaConf.load(path))
        stack = [values]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str) and value.endswith((".yaml", ".yml")):
                included = (path.parent / value).resolve()
                if included.is_file():
                    visit(included)

    for config in configs:
        visit(Path(config).resolve())
    return found


def run_grid(spec: GridSpec, quiet: bool = False) -> list[dict]:
    """Run every cell whose finished record does not match its identity; return all records."""
    runs = spec.runs()
    records = []
    for index, run in enumerate(runs, start=1):
        record = read_record(run.run_dir)
        label = f"[{index}/{len(runs)}] {spec.name}: {run.run_dir.parent.name} seed {run.seed}"
        if record is not None and record.get("run_id") == run.run_id:
            console.print(f"{label} [green]done already[/green], skipped")
            records.append(record)
            continue
        if run.run_dir.exists():  # unfinished, or finished under other settings: redo from a clean folder
            reason = "settings changed" if record is not None else "unfinished"
            console.print(f"{label}: removing the {reason} run in {run.run_dir}")
            shutil.rmtree(run.run_dir)
        if not quiet:
            console.rule(label)
        record = run_experiment(
            run.configs,
            run.run_dir,
            run.arguments,
            labels={
                "method": run.cell.method,
                "encoder": run.cell.encoder_name,
                "run_id": run.run_id,
                "settings_id": run.settings_id,
            },
        )
        if quiet:
            accuracy = record["selection"][record["primary_rule"]]["test"].get(
                f"{run.direction}/test/target_acc"
            )
            console.print(f"{label}: target acc {accuracy:.3f} ({record['fit_seconds']:.0f} s)")
        records.append(record)
    return records


def load_grid(path: Path) -> GridSpec:
    """Read a grid YAML (the same keys `sed-uda grid --config` takes)."""
    from omegaconf import OmegaConf

    if not Path(path).is_file():
        raise FileNotFoundError(f"grid config {path} does not exist (see configs/grid/ for examples)")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    data["cells"] = [Cell(Path(c["adaptation"]), Path(c["encoder"])) for c in data.get("cells") or []]
    data["directions"] = {k: Path(v) for k, v in (data.get("directions") or {}).items()}
    return GridSpec(**data)

"""Experiment grids: (adaptation x encoder) cells x directions x seeds, each an ordinary fit + test run.

A run composes config files by concern: the direction's experiment config (trainer, model defaults,
data, selection), an encoder config and an adaptation config, plus the grid's overrides. Cells name
their files explicitly and are named after them (`dann_cnn1d_en2zh/seed0`). A finished run is reused
while its identity holds (resolved configuration, feature cache, code: `identity`); an outdated run is
moved aside to `seed0.outdated-<id>`, never deleted, and the grid says so before it happens. Runs go
to a launcher (`launchers`: here, side by side, or SLURM); each claims its folder first (`claims`), so
grids sharing a runs_dir never train one run twice, and its record is written last (`runner`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from rich.console import Console

from sed_uda.errors import UserError, user_message
from sed_uda.experiments import identity
from sed_uda.experiments.claims import Claimed, claim, holder, is_claimed
from sed_uda.experiments.launchers import Launcher, make_launcher
from sed_uda.experiments.quiet import quiet_lightning
from sed_uda.experiments.runner import OUTDATED, read_record, run_experiment
from sed_uda.models.selection.rules import RULES

console = Console()


@dataclass(frozen=True)
class Cell:
    """One row of the results table: an adaptation config trained with an encoder config.

    `overrides` (optional) go to this cell's runs after the grid's, e.g. ["--trainer.precision=bf16-mixed"]
    for an encoder that gains from it. `variants` (optional) trains the cell once per named list of
    overrides, e.g. trade-off weights {w0.3: ["--model.adaptations.init_args.weight=0.3"], w1: [], w3: [...]}:
    each variant is a row `method@name`, and the table adds the variant a label-free rule chooses (and the
    ORACLE's) per corpus.
    """

    adaptation: Path
    encoder: Path
    variants: dict[str, list[str]] | None = None
    overrides: list[str] | None = None

    def variant_overrides(self) -> dict[str | None, tuple[str, ...]]:
        """Variant name -> the cell's overrides then the variant's; {None: the cell's} without variants."""
        return {
            name: (*(self.overrides or ()), *extra) for name, extra in (self.variants or {None: []}).items()
        }

    def __hash__(self) -> int:
        variants = tuple(sorted((name, tuple(extra)) for name, extra in (self.variants or {}).items()))
        return hash((self.adaptation, self.encoder, variants, tuple(self.overrides or ())))

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
    corpus: str | None = None
    variant: str | None = None
    rules: tuple[str, ...] = tuple(RULES)
    """Selection rules whose picks the run records (a rule's signals are computed only when asked)."""

    @property
    def arguments(self) -> tuple[str, ...]:
        """The LightningCLI overrides of this run: its seed, then the grid's overrides."""
        return (f"--seed_everything={self.seed}", f"--data.seed={self.seed}", *self.overrides)

    @cached_property
    def settings_id(self) -> str:
        """What defines the run except its seed and code (runs of one table cell share it): the resolved
        configuration of its files and overrides, and the content of its feature cache."""
        return identity.settings_id(self.configs, self.overrides)

    @property
    def run_id(self) -> str:
        return f"{self.settings_id}-seed{self.seed}"

    @property
    def label(self) -> str:
        where = f"{self.corpus}/" if self.corpus else ""
        return f"{where}{self.run_dir.parent.name} seed {self.seed}"


@dataclass
class GridSpec:
    """What a grid runs. `directions` maps a direction name to its experiment config; `corpora` (optional)
    a corpus name to its feature cache: every run is made on each, in `<runs_dir>/<corpus>/`, and the
    table reports each corpus and the mean over them."""

    name: str = "grid"
    runs_dir: Path = Path("runs/grid")
    cells: list[Cell] = field(default_factory=list)
    directions: dict[str, Path] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: list[str] = field(default_factory=list)
    launcher: str | dict | None = None
    corpora: dict[str, Path] | None = None
    rules: list[str] | None = None
    """Selection rules each run records (None: every rule); fewer rules compute fewer signals."""

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
        unknown = [name for name in self.rules or () if name not in RULES]
        if unknown:
            raise UserError(
                f"grid {self.name!r}: unknown selection rules {unknown}; choose from {', '.join(RULES)}"
            )
        out = []
        for corpus, cache in (self.corpora or {None: None}).items():
            overrides = (*self.overrides, f"--data.cache_dir={cache}") if corpus else tuple(self.overrides)
            folder = Path(self.runs_dir) / corpus if corpus else Path(self.runs_dir)
            for cell in self.cells:
                for variant, extra in cell.variant_overrides().items():
                    out += self._runs_of(cell, variant, (*overrides, *extra), folder, corpus)
        return out

    def _runs_of(
        self, cell: Cell, variant: str | None, overrides: tuple[str, ...], folder: Path, corpus: str | None
    ) -> list[Run]:
        """A cell (variant)'s runs on one corpus: every direction and seed."""
        method = f"{cell.method}@{variant}" if variant else cell.method
        return [
            Run(
                cell,
                direction,
                seed,
                (Path(experiment), Path(cell.encoder), Path(cell.adaptation)),
                overrides,
                folder / f"{method}_{cell.encoder_name}_{direction}" / f"seed{seed}",
                corpus,
                variant,
                tuple(self.rules or RULES),
            )
            for direction, experiment in self.directions.items()
            for seed in self.seeds
        ]

    def check_corpora(self) -> None:
        """Every corpus names a built feature cache; a clear error with the fix otherwise (checked before
        a grid runs or resolves its runs, not when it is only read)."""
        for corpus, cache in (self.corpora or {}).items():
            if not (Path(cache) / "meta.json").is_file():
                raise FileNotFoundError(
                    f"grid {self.name!r}: corpus {corpus!r} names {cache}, which holds no feature cache. "
                    f"Make it first, e.g. sed-uda synth --seed 1 --out data/seed1/synth_esd, then "
                    f"sed-uda prepare --root data/seed1/synth_esd --cache data/seed1/cache"
                )


@dataclass(frozen=True)
class Status:
    """Where a run stands: `done`, `to run`, `unfinished` (a folder without a record), `outdated` (a
    record of other settings or code) or `claimed` (another process is training it now)."""

    state: str
    reason: str = ""
    record: dict | None = None


def status(run: Run, check_claim: bool = True) -> Status:
    """The run's state from its folder, record and claim."""
    record = read_record(run.run_dir)
    recorded = (record or {}).get("rules") or (record or {}).get("selection", {})  # asked for, picked or not
    missing = sorted(set(run.rules) - set(recorded))
    if record is not None and record.get("run_id") == run.run_id and "code" in record:
        changed = identity.changed_sources(record["code"])
        if not changed and not missing:
            return Status("done", record=record)
    if check_claim and is_claimed(run.run_dir):
        return Status("claimed", f"being run by {holder(run.run_dir)}")
    if record is None:
        return Status("unfinished") if run.run_dir.exists() else Status("to run")
    if record.get("run_id") != run.run_id:
        return Status("outdated", "settings or feature cache changed", record)
    if "code" not in record:
        return Status("outdated", "recorded without its code version", record)
    if not changed:
        return Status("outdated", f"recorded without the rules {', '.join(missing)}", record)
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return Status("outdated", f"code changed ({', '.join(changed[:3])}{more})", record)


def aside_path(run: Run, record: dict) -> Path:
    """Where an outdated run is kept: `seed0.outdated-<its settings id>` beside it (numbered if taken)."""
    base = run.run_dir.with_name(f"{run.run_dir.name}{OUTDATED}{record.get('settings_id') or 'old'}")
    path, number = base, 1
    while path.exists():
        number += 1
        path = base.with_name(f"{base.name}-{number}")
    return path


def plan_line(run: Run, state: Status) -> str:
    """What the grid does with a run, said before it does it."""
    if state.state == "done":
        return "done already, skipped"
    if state.state == "claimed":
        return f"{state.reason}, skipped"
    if state.state == "unfinished":
        return f"to run; the unfinished run in {run.run_dir} (no record) is removed first"
    if state.state == "outdated":
        return f"{state.reason}: to re-run; the old run moves to {aside_path(run, state.record)}"
    return "to run"


def run_cell(run: Run, threads: int | None, verbose: bool = False) -> dict:
    """Claim the run, clear its folder as `plan_line` said, fit and test it. Returns {"record": ...},
    {"skipped": why} (another process has it) or {"failed": one line} (a problem the user can fix)."""
    if threads:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    try:
        with claim(run.run_dir):
            state = status(run, check_claim=False)
            if state.state == "done":  # finished by another grid while this one waited
                return {"record": state.record}
            if state.state == "outdated":
                run.run_dir.rename(aside_path(run, state.record))
            elif run.run_dir.exists():
                shutil.rmtree(run.run_dir)
            if verbose:
                console.rule(run.label)
            with quiet_lightning(verbose):
                record = run_experiment(
                    run.configs,
                    run.run_dir,
                    run.arguments,
                    rules=run.rules,
                    labels={
                        "method": run.cell.method,
                        "encoder": run.cell.encoder_name,
                        "run_id": run.run_id,
                        "settings_id": run.settings_id,
                        "corpus": run.corpus,
                        "variant": run.variant,
                        "rules": list(run.rules),
                    },
                )
            return {"record": record}
    except Claimed as claimed:
        return {"skipped": str(claimed)}
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        return {"failed": message}


class GridFailed(UserError):
    """Some runs of a grid ended with an error; the others are finished and kept."""


def run_grid(spec: GridSpec, verbose: bool = False, launcher: Launcher | None = None) -> list[dict]:
    """Say what happens to every run, run those not done with the launcher (the spec's, or one after
    another here), one line per run as it ends; return the records of finished runs in table order."""
    runs = spec.runs()
    spec.check_corpora()
    launcher = launcher or make_launcher(spec.launcher)
    labels = {run: f"[{k}/{len(runs)}] {spec.name}: {run.label}" for k, run in enumerate(runs, start=1)}
    records, todo = {}, []
    with quiet_lightning(verbose=False):  # resolving configurations says nothing worth a line
        states = {run: status(run) for run in runs}
    for run, state in states.items():
        console.print(f"{labels[run]}: {plan_line(run, state)}", markup=False, soft_wrap=True)
        if state.state == "done":
            records[run] = state.record
        elif state.state != "claimed":
            todo.append(run)
    if todo and launcher.threads():
        at_once = launcher.jobs or "all"
        console.print(f"{len(todo)} runs to do, {at_once} at a time, {_threads(launcher.threads())} each")
    failed = []
    folder = Path(spec.runs_dir) / ".submitit"
    with quiet_lightning(verbose):
        for run, result, error in launcher.launch(partial(run_cell, verbose=verbose), todo, folder):
            error = error or (result or {}).get("failed")
            if error is not None:
                failed.append(run)
                console.print(f"{labels[run]}: failed: {error}", markup=False, soft_wrap=True)
            elif "skipped" in result:
                console.print(f"{labels[run]}: {result['skipped']}, skipped", markup=False, soft_wrap=True)
            else:
                records[run] = record = result["record"]
                console.print(f"{labels[run]}: {_summary(run, record)}", markup=False, soft_wrap=True)
    if failed:
        raise GridFailed(
            f"{len(failed)} of {len(todo)} runs failed ({', '.join(run.label for run in failed)}); the "
            "others are finished and kept: fix the cause and run the same command again"
        )
    return [records[run] for run in runs if run in records]


def _summary(run: Run, record: dict) -> str:
    accuracy = record["selection"][record["primary_rule"]]["test"].get(f"{run.direction}/test/target_acc")
    shown = "–" if accuracy is None else f"{accuracy:.3f}"
    return f"target acc {shown} ({record['fit_seconds']:.0f} s fit, {_threads(record['threads'])})"


def _threads(count: int) -> str:
    return f"{count} torch thread" + ("" if count == 1 else "s")


def check_grid(spec: GridSpec) -> None:
    """`grid --dry-run`: resolve every run's configuration (no training) and say what the grid would do."""
    from sed_uda.training_cli import gpu_note

    runs = spec.runs()
    spec.check_corpora()
    with quiet_lightning(verbose=False):
        for index, run in enumerate(runs, start=1):
            resolved = identity.resolved_settings(run.configs, run.overrides)
            line = f"[{index}/{len(runs)}] {run.run_dir}: {plan_line(run, status(run))}"
            console.print(line + gpu_note(resolved["config"]), markup=False, soft_wrap=True)
    console.print(
        f"{spec.name}: every configuration of the {len(runs)} runs resolves", markup=False, soft_wrap=True
    )


GRID_KEYS = ("name", "runs_dir", "cells", "directions", "seeds", "overrides", "launcher", "corpora", "rules")


def grid_config_problem(path: Path) -> str | None:
    """Why a file given as `grid --config` is not a grid config (one line with the fix), or None."""
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None  # the command line parser reports unreadable files
    if not isinstance(values, dict) or set(values) <= set(GRID_KEYS):
        return None
    if {"trainer", "model", "data"} & set(values):
        return (
            f"{path} is an experiment config (for `sed-uda fit --config {path}`), not a grid config; "
            "a grid config lists cells and directions, e.g. configs/grid/demo.yaml"
        )
    unknown = ", ".join(sorted(set(values) - set(GRID_KEYS)))
    return f"{path} is not a grid config: it has {unknown}; a grid config has {', '.join(GRID_KEYS)}"


def load_grid(path: Path) -> GridSpec:
    """Read a grid YAML (the same keys `sed-uda grid --config` takes)."""
    from omegaconf import OmegaConf

    if not Path(path).is_file():
        raise FileNotFoundError(f"grid config {path} does not exist (see configs/grid/ for examples)")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    data["cells"] = [
        Cell(Path(c["adaptation"]), Path(c["encoder"]), c.get("variants"), c.get("overrides"))
        for c in data.get("cells") or []
    ]
    data["directions"] = {k: Path(v) for k, v in (data.get("directions") or {}).items()}
    if data.get("corpora"):
        data["corpora"] = {str(k): Path(v) for k, v in data["corpora"].items()}
    if set(data) - set(GRID_KEYS):
        raise UserError(grid_config_problem(Path(path)))
    return GridSpec(**data)

"""`make demo`: the poster's study end to end on the bundled corpus, on CPU; and how grids talk.

Inside a grid, Lightning's per-run output (model summary, progress bars, accelerator banners) would
bury the one line per run that says where the grid is, so it is off unless `--verbose`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from sed_uda.corpus.esd import read_synth_marker
from sed_uda.corpus.synth import SYNTH_SETTINGS, synthesize_corpus
from sed_uda.errors import UserError
from sed_uda.experiments.grid import GridSpec, load_grid, run_grid
from sed_uda.experiments.runner import read_record
from sed_uda.experiments.table import write_tables
from sed_uda.features.cache import prepare_cache

console = Console()

QUIET_TRAINER = ["--trainer.enable_model_summary=false", "--trainer.enable_progress_bar=false"]
"""Trainer overrides that keep a grid run to its progress line; display only, results are unchanged."""


@contextmanager
def quiet_lightning(spec: GridSpec, verbose: bool) -> Iterator[None]:
    """Unless `verbose`, run the grid without model summaries, progress bars and Lightning's chatter."""
    if verbose:
        yield
        return
    spec.overrides = [*(spec.overrides or []), *QUIET_TRAINER]
    with _quiet_logs():
        yield


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """No Lightning info banners, library deprecation notices or Lightning's possible false positives.

    Every other warning and error still shows.
    """
    import lightning.pytorch  # noqa: F401 - sets its loggers' levels on import: import before lowering them
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, PossibleUserWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def check_grid(spec: GridSpec) -> None:
    """`grid --dry-run`: resolve every run's configuration (no training) and list what the grid would do."""
    from sed_uda.training_cli import gpu_note, resolve_config

    runs = spec.runs()
    with _quiet_logs():
        for index, (config, run_dir, seed) in enumerate(runs, start=1):
            if not config.is_file():
                raise UserError(
                    f"{config}: experiment config of grid {spec.name!r} does not exist; add it to "
                    f"{spec.experiments_dir} or remove that cell or direction from the grid"
                )
            args = [
                f"--config={config}",
                f"--trainer.default_root_dir={run_dir}",
                f"--seed_everything={seed}",
            ]
            resolved = resolve_config([*args, *(spec.overrides or [])])
            state = "done already" if read_record(run_dir) is not None else "to run"
            console.print(f"[{index}/{len(runs)}] {run_dir}: {state}{gpu_note(resolved)}", markup=False)
    console.print(f"{spec.name}: every configuration of the {len(runs)} runs resolves", markup=False)


def run_demo(data: Path, grid_config: Path, out: Path, workers: int = 2, verbose: bool = False) -> str:
    """Make (or finish) the corpus, build the cache (if stale), run the grid quietly, write the table."""
    started = time.perf_counter()
    corpus, cache = Path(data) / "synth_esd", Path(data) / "cache"
    console.rule("1/4 corpus")
    marker = read_synth_marker(corpus) if corpus.is_dir() else None
    if marker is not None and marker["complete"]:
        console.print(f"reusing the corpus in {corpus} (delete it to generate a new one)", markup=False)
    else:  # a new corpus, or an interrupted one finished with its own settings
        settings = {key: marker[key] for key in SYNTH_SETTINGS} if marker is not None else {}
        synthesize_corpus(corpus, workers=workers, **settings)
    console.rule("2/4 features")
    prepare_cache(corpus, cache, workers=workers)
    console.rule("3/4 experiments")
    spec = load_grid(grid_config)
    spec.overrides = [*(spec.overrides or []), f"--data.cache_dir={cache}"]
    with quiet_lightning(spec, verbose):
        run_grid(spec)
    console.rule("4/4 results")
    text = write_tables(spec.runs_dir, out)
    console.print(text)
    console.print(f"\nwrote {out} in {time.perf_counter() - started:.0f} s")
    return text

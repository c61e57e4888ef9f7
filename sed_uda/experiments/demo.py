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
from sed_uda.experiments.grid import GridSpec, load_grid, run_grid
from sed_uda.experiments.runner import read_record
from sed_uda.experiments.table import write_tables
from sed_uda.features.cache import prepare_cache

console = Console()


@contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Unless `verbose`: no model summaries, progress bars, info banners, library deprecation notices or
    Lightning's possible false positives (every other warning and error still shows)."""
    if verbose:
        yield
        return
    import lightning.pytorch  # noqa: F401 - sets its loggers' levels on import: import before lowering them
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    from sed_uda.training_cli import quiet_training

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), quiet_training():
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
    with quiet_lightning(verbose=False):
        for index, run in enumerate(runs, start=1):
            args = [*(f"--config={config}" for config in run.configs), *run.overrides]
            resolved = resolve_config([*args, f"--trainer.default_root_dir={run.run_dir}"])
            record = read_record(run.run_dir)
            state = "to run"
            if record is not None:
                state = (
                    "done already" if record.get("run_id") == run.run_id else "settings changed: to re-run"
                )
            console.print(f"[{index}/{len(runs)}] {run.run_dir}: {state}{gpu_note(resolved)}", markup=False)
    console.print(f"{spec.name}: every configuration of the {len(runs)} runs resolves", markup=False)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Torch's intra-op thread count set to `threads` inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_demo(
    data: Path,
    grid_config: Path,
    out: Path,
    workers: int,
    threads: int,
    verbose: bool = False,
) -> str:
    """Make (or finish) the corpus, build the cache (if stale), run the grid quietly with `threads` torch
    threads, write the table and say which thread counts its runs had.

    CPU results depend on the thread count (the order of floating-point sums), so the demo pins it: the
    same seed and thread count give the README's numbers on any machine."""
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
    with quiet_lightning(verbose), torch_threads(threads):
        run_grid(spec, quiet=not verbose)
    console.rule("4/4 results")
    text = write_tables(spec.runs_dir, out)
    console.print(text, soft_wrap=True, markup=False)  # Markdown tables, unwrapped and verbatim
    records = [read_record(run.run_dir) or {} for run in spec.runs()]
    used = ", ".join(sorted({str(record.get("threads")) for record in records}))
    console.print(
        f"\nwrote {out} in {time.perf_counter() - started:.0f} s; torch threads per run: {used} "
        "(the same seed and thread count give the same numbers)",
        markup=False,
    )
    return text

"""`make demo`: the poster's study end to end on the bundled corpus, on CPU."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from threadpoolctl import threadpool_limits

from sed_uda.corpus.esd import read_synth_marker
from sed_uda.corpus.synth import SYNTH_SETTINGS, synthesize_corpus
from sed_uda.experiments import identity
from sed_uda.experiments.grid import GridSpec, load_grid, run_grid
from sed_uda.experiments.launchers import InProcess
from sed_uda.experiments.table import baseline_results, write_tables
from sed_uda.features.cache import prepare_cache

console = Console()


def run_demo(
    data: Path, grid_config: Path, out: Path, workers: int, threads: int, verbose: bool = False
) -> str:
    """Make (or finish) the corpus, build the cache (if stale), run the grid quietly, write the table and
    say which torch thread counts its runs had.

    CPU results depend on the thread count (the order of floating-point sums), so the demo pins it: each
    run gets `threads`, unless the grid config names a launcher of its own. One thread suits the small
    networks of the demo best; the table's shallow baselines are computed beside the runs, on a thread
    of their own (NumPy's BLAS also held to `threads`)."""
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
    pinned = InProcess(threads=threads) if spec.launcher is None else None  # None: the config's launcher
    with threadpool_limits(threads, user_api="blas"), ThreadPoolExecutor(1) as beside:
        baselines = _baselines_beside(spec, beside) if pinned is not None else None
        try:
            records = run_grid(spec, verbose=verbose, launcher=pinned)
        except BaseException:  # Ctrl-C or a failed run: the baselines under way finish first
            if baselines is not None and not baselines.done():
                console.print("stopping: the shallow baselines under way finish first (up to a minute)")
            raise
        if baselines is not None:
            baselines.result()
    console.rule("4/4 results")
    text = write_tables(spec.runs_dir, out)
    console.print(text, soft_wrap=True, markup=False)  # Markdown tables, unwrapped and verbatim
    used = ", ".join(sorted({str(record.get("threads")) for record in records}))
    console.print(
        f"\nwrote {out} in {time.perf_counter() - started:.0f} s; torch threads per run: {used} "
        "(the same seed and thread count give the same numbers)",
        markup=False,
    )
    return text


def _baselines_beside(spec: GridSpec, pool: ThreadPoolExecutor) -> Future:
    """Start the table's shallow baselines (`baseline_results`) for the grid's input setting on a thread,
    so they run on a second core while the grid's single-threaded runs train; the table then finds them
    in `<runs_dir>/baselines.json` (or recomputes them, were its runs' setting another)."""
    from sed_uda.data.datamodule import CrossLingualDataModule

    runs = spec.runs()
    languages, setting = set(), None
    for run in runs:
        data = identity.resolved_settings(run.configs, run.overrides)["config"]["data"]
        languages.add((data["source"], data["target"]))
        module = CrossLingualDataModule(
            str(data["cache_dir"]), data["source"], data["target"], features=data["features"]
        )
        setting = (str(module.cache_dir), data["normalization"], list(module.features))
    return pool.submit(baseline_results, spec.runs_dir, *setting, languages)

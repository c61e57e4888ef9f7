"""`make demo`: the poster's study end to end on the bundled corpus, on CPU."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from sed_uda.corpus.synth import synthesize_corpus
from sed_uda.experiments.grid import load_grid, run_grid
from sed_uda.experiments.table import write_tables
from sed_uda.features.cache import prepare_cache

console = Console()


def run_demo(data: Path, grid_config: Path, out: Path, workers: int = 2) -> str:
    """Generate the corpus (if absent), build the cache (if stale), run the grid, write the table."""
    started = time.perf_counter()
    corpus, cache = Path(data) / "synth_esd", Path(data) / "cache"
    console.rule("1/4 corpus")
    if (corpus / "ReadMe.txt").is_file():  # synth writes it last, so the corpus is complete
        console.print(f"reusing the corpus in {corpus} (delete it to generate a new one)")
    elif corpus.exists() and any(corpus.iterdir()):
        raise FileExistsError(
            f"{corpus} holds an incomplete corpus (an interrupted synth: no ReadMe.txt); delete it and rerun"
        )
    else:
        synthesize_corpus(corpus, workers=workers)
    console.rule("2/4 features")
    prepare_cache(corpus, cache, workers=workers)
    console.rule("3/4 experiments")
    spec = load_grid(grid_config)
    spec.overrides = [*(spec.overrides or []), f"--data.cache_dir={cache}"]
    run_grid(spec)
    console.rule("4/4 results")
    text = write_tables(spec.runs_dir, out)
    console.print(text)
    console.print(f"\nwrote {out} in {time.perf_counter() - started:.0f} s")
    return text

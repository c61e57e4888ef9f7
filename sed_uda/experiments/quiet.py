"""How grids talk: one line per run, not Lightning's or W&B's per-run output.

Inside a grid, model summaries, progress bars, accelerator banners and W&B's run history (about 35
lines per run) would bury the line that says where the grid is, so they are off unless `--verbose`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Unless `verbose`: no model summaries, progress bars, info banners, W&B start and history lines,
    library deprecation notices or Lightning's possible false positives (every other warning and error
    still shows). A WANDB_SILENT the user set is kept."""
    if verbose:
        yield
        return
    import lightning.pytorch  # noqa: F401 - sets its loggers' levels on import: import before lowering them
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    from sed_uda.training_cli import quiet_training

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    silent = os.environ.get("WANDB_SILENT")
    os.environ.setdefault("WANDB_SILENT", "true")
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
        if silent is None:
            os.environ.pop("WANDB_SILENT", None)

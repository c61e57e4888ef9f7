"""Where a training command writes, so that runs never mix.

`fit` trains into a folder of its own: by default the next free one of `runs/fit/<name>`,
`<name>-2`, `<name>-3`, ...; a folder given with `--trainer.default_root_dir` that already holds a run
is refused unless the run in it is continued (`--ckpt_path`). `validate`, `test` and `predict` write into
a fresh folder of their own in the same way under `runs/<command>/`, never into the folder of the run
whose checkpoint they evaluate, so a finished run is never changed by using it.
"""

from __future__ import annotations

import re
from pathlib import Path

from sed_uda.errors import BadArgument, OutputExists

RUN_FILES = ("config.yaml", "checkpoints", "csv", "lightning_logs", "wandb", "predictions.csv", "record.json")
"""What a training command leaves in its folder: a folder holding any of them holds a run."""


def holds_files(folder: Path) -> bool:
    """Whether `folder` exists and is not empty."""
    return folder.is_dir() and any(folder.iterdir())


def holds_run(folder: Path) -> bool:
    """Whether `folder` holds what a training command writes (other files, such as a cache, do not count)."""
    return any((folder / name).exists() for name in RUN_FILES)


def _numbered(base: Path) -> dict[int, Path]:
    """The existing folders `base` (1), `base-2` (2), ... by number."""
    found = {1: base} if base.exists() else {}
    if base.parent.is_dir():
        pattern = re.compile(re.escape(base.name) + r"-(\d+)")
        for path in base.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match and int(match[1]) > 1:
                found[int(match[1])] = path
    return found


def next_free(base: Path) -> Path:
    """`base` if it is missing or empty, else `base-N` with N one above the highest number in use."""
    if not holds_files(base):
        return base
    return base.with_name(f"{base.name}-{max(_numbered(base)) + 1}")


def latest(base: Path) -> Path:
    """The newest run folder of `base`, `base-2`, ... (the highest number), or `base` if there is none."""
    found = _numbered(base)
    return found[max(found)] if found else base


def fit_folder(configured: str | None, default: Path, ckpt_path: str | None) -> Path:
    """The folder a `fit` writes into.

    Given (`configured`): that folder, refused if it holds files and no run is continued. Not given: a
    continued run stays in its own folder (`--ckpt_path last`: the newest of `default`'s; a checkpoint
    file: the run folder holding its `checkpoints/`), a new run gets the next free folder of `default`.
    """
    if configured is not None:
        folder = Path(configured)
        if ckpt_path is None and holds_run(folder):
            raise OutputExists(
                f"{folder}: already holds a run, which is kept as it is; continue it with --ckpt_path last, "
                f"or train a new run into another folder, e.g. --trainer.default_root_dir {next_free(folder)}"
            )
        return folder
    if ckpt_path == "last":
        return latest(default)
    if ckpt_path is not None and Path(ckpt_path).parent.name == "checkpoints":
        return Path(ckpt_path).parent.parent
    return next_free(default)


def evaluation_folder(configured: str | None, default: Path) -> Path:
    """The folder a `validate`/`test`/`predict` writes into: `configured` if it is free, else the next
    free folder of `default` (a run's own config names the run's folder, which must stay unchanged)."""
    if configured is not None and not holds_run(Path(configured)):
        return Path(configured)
    return next_free(default)


def last_checkpoint(checkpoints: Path, folder: Path) -> Path:
    """`checkpoints/last.ckpt` for `--ckpt_path last`; refused when there is none (nothing to continue)."""
    path = checkpoints / "last.ckpt"
    if not path.is_file():
        raise BadArgument(
            f"--ckpt_path last: {path} does not exist, so there is no run to continue in {folder}; "
            "leave --ckpt_path out to start a new run, or give the checkpoint's path"
        )
    return path

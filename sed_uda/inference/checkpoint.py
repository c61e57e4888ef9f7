"""Read a checkpoint without running code from it.

Checkpoints are loaded with `weights_only=True`: tensors, numbers, strings and containers only, so a
checkpoint from elsewhere cannot execute anything while being read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from sed_uda.errors import CheckpointMismatch

DATA_STATE = "CrossLingualDataModule"
"""Key of the data module's `state_dict` in a Lightning checkpoint (the class's qualified name)."""


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents on the CPU; CheckpointMismatch (one line) if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatch(f"{path}: checkpoint not found; pass a .ckpt written by `sed-uda fit`")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by cause
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointMismatch(f"{path}: not a readable checkpoint ({first})") from error


def data_state(checkpoint: Mapping, path: str | Path) -> dict:
    """The data module's state stored in a checkpoint (feature recipe, normalisation, class names)."""
    state = checkpoint.get(DATA_STATE)
    if not state or not ("front_end" in state or "feature_config" in state):
        raise CheckpointMismatch(
            f"{path}: the checkpoint holds no feature recipe (written before checkpoints were "
            "self-contained); train it again with `sed-uda fit`"
        )
    return state

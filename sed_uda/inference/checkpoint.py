"""Read a checkpoint without running code from it, and compare it with a configuration.

Checkpoints are loaded with `weights_only=True`: tensors, numbers, strings and containers only, so a
checkpoint from elsewhere cannot execute anything while being read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from sed_uda.errors import UserError

DATA_STATE = "CrossLingualDataModule"
"""Key of the data module's `state_dict` in a Lightning checkpoint (the class's qualified name)."""


class CheckpointMismatch(UserError):
    """A checkpoint that does not fit the configuration or the request; the message says how."""


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


def _flatten(values: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in values.items():
        if str(key).startswith("_"):  # LightningCLI bookkeeping such as _instantiator
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= _flatten(value, f"{name}.")
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def differences(stored: Mapping, configured: Mapping) -> str:
    """`key: checkpoint A, config B` for every key both have with different values ("" if none).

    Nested mappings (e.g. an injected component's `init_args`) are compared key by key."""
    old, new = _flatten(stored), _flatten(configured)
    return "; ".join(
        f"{key}: checkpoint {old[key]!r}, config {new[key]!r}"
        for key in sorted(old.keys() & new.keys())
        if old[key] != new[key]
    )

"""Compare the settings a checkpoint stores with a configuration's, key by key.

Low in the package on purpose: the data module, the training CLI and inference all refuse a checkpoint
that was made differently, and none of them should import another to do it.
"""

from __future__ import annotations

from collections.abc import Mapping


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

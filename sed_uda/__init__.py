"""sed_uda: cross-lingual speech emotion recognition with unsupervised domain adaptation."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    """`sed_uda.load_model` imports torch on first use only, so `import sed_uda` (and the CLI) stays light."""
    if name == "load_model":
        from sed_uda.inference.model import load_model

        return load_model
    raise AttributeError(f"module 'sed_uda' has no attribute {name!r}")

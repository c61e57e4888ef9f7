"""What a front end is: audio at one sample rate in, named blocks of per-frame channels out.

A front end is chosen by `class_path` (a YAML in configs/frontend/, or `prepare --front-end NAME`), and
its full config (`class_path` + `init_args`) and the versions of the libraries that compute it travel
with every cache and checkpoint: `build` turns that record back into the same front end, so a model
sees at prediction time exactly the frames it saw in training. Front ends are frozen dataclasses: the
fields are the init_args, and equal fields mean equal features.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from sed_uda.errors import UserError

LEGACY_LIBROSA = "sed_uda.features.frontends.librosa.LibrosaFrames"
"""The front end of caches and checkpoints written before front ends were recorded (`feature_config`)."""


class FrontEndError(UserError, ValueError):
    """A front end cannot be built or run as configured; the message names the fix."""


def optional_module(name: str, install: str):  # noqa: ANN201 - the module itself
    """Import an optional extra late; FrontEndError with the install line when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise FrontEndError(install) from error


@dataclass(frozen=True)
class FrontEnd(ABC):
    """Base of every front end: frames of one utterance (or of a batch) and what they are.

    Subclasses are frozen dataclasses whose fields are their init_args; they define `blocks` (name ->
    channels, in stacking order), `extract` and `versions`. A front end that computes many utterances
    at once on a device (a speech model) sets `batch_size` > 1 and overrides `extract_batch`.
    """

    sample_rate: int = 16_000
    min_duration_s: float = 0.25

    batch_size = 1
    """Utterances per `extract_batch` call in `prepare` (1: one file per task of the worker pool)."""
    runs_on_device = False
    """Whether `extract_batch` honours `device` (else it computes on the CPU whatever is asked)."""

    @property
    @abstractmethod
    def blocks(self) -> dict[str, int]:
        """Channels of each named block, in the order they are stacked along the channel axis."""

    @abstractmethod
    def extract(self, signal: np.ndarray) -> np.ndarray:
        """(frames, n_channels) float32 features of a mono float32 signal at `sample_rate`."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the libraries (and model files) whose change changes the features."""

    def extract_batch(self, signals: Sequence[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        """Features of several signals; front ends that batch on a device override it."""
        return [self.extract(signal) for signal in signals]

    def check(self) -> None:  # noqa: B027 - a hook: most front ends accept any values
        """FrontEndError naming the fields when the configuration cannot work (called before any work)."""

    @property
    def n_channels(self) -> int:
        return sum(self.blocks.values())

    def slices(self) -> dict[str, slice]:
        """Channel range of each block in the stacked (frames, channels) array."""
        return block_slices(self.blocks)

    @property
    def name(self) -> str:
        return type(self).__name__

    def config(self) -> dict:
        """The full config that `build` turns back into this front end."""
        cls = type(self)
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": asdict(self)}


def block_slices(blocks: Mapping[str, int]) -> dict[str, slice]:
    """Channel range of each block, stacked in the given order."""
    out, start = {}, 0
    for name, width in blocks.items():
        out[name] = slice(start, start + width)
        start += width
    return out


def build(config: Mapping) -> FrontEnd:
    """The front end a config describes ({"class_path": ..., "init_args": {...}}); FrontEndError if not."""
    if not isinstance(config, Mapping) or not isinstance(config.get("class_path"), str):
        raise FrontEndError(f"a front end config needs a class_path (and init_args), got {dict(config)!r}")
    module_name, _, class_name = config["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise FrontEndError(
            f"front end class_path {config['class_path']!r} cannot be imported ({error})"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, FrontEnd)):
        raise FrontEndError(f"{config['class_path']} is not a sed_uda FrontEnd subclass")
    try:
        front_end = cls(**(config.get("init_args") or {}))
    except TypeError as error:
        raise FrontEndError(f"{config['class_path']}: {error}") from error
    front_end.check()
    return front_end


def recorded_blocks(record: Mapping) -> dict[str, int]:
    """The blocks a cache's meta.json or a checkpoint's data state lists (a front end that needs its
    model files to know them, like `ssl`, is then not needed to train on its cache)."""
    if "blocks" in record:
        return dict(record["blocks"])
    return recorded(record).blocks


def recorded(record: Mapping) -> FrontEnd:
    """The front end recorded in a cache's meta.json or a checkpoint's data state.

    Records written before front ends were components hold only the librosa `feature_config`."""
    if "front_end" in record:
        return build(record["front_end"])
    return build({"class_path": LEGACY_LIBROSA, "init_args": record["feature_config"]})

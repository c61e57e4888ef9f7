"""openSMILE's eGeMAPSv02 (Eyben et al. 2016, "The Geneva Minimalistic Acoustic Parameter Set"):
the paralinguistic standard set, as frames or as one pooled vector per utterance.

- `level: lld`: the 25 low-level descriptors (pitch, jitter, shimmer, loudness, HNR, formants,
  spectral slope and balance, MFCC 1-4, ...) every 10 ms: frames for every encoder.
- `level: functionals`: the 88 functionals (means, coefficients of variation, percentiles, rates of
  the LLDs over the utterance) as a single frame. Every encoder accepts it, but only pooling models
  make sense of it: the stats encoder (whose pooled mean is the vector itself, std 0) and the pooled
  logistic-regression baselines of `sed-uda table`; a 1D-CNN sees a one-frame sequence.

openSMILE is free for research and education only (audEERING's licence, not this project's MIT):
it is the optional extra `pip install 'sed_uda[egemaps]'`, imported only when features are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sed_uda.features.frontends.base import FrontEnd, FrontEndError, optional_module

LEVELS: dict[str, int] = {"lld": 25, "functionals": 88}
"""Channels of each level of eGeMAPSv02."""
INSTALL = (
    "the egemaps front end needs openSMILE: pip install 'sed_uda[egemaps]' "
    "(free for research and education only; see the README)"
)


def _opensmile():  # noqa: ANN202 - the module, imported late because it is an optional extra
    return optional_module("opensmile", INSTALL)


@lru_cache(maxsize=2)
def _smile(level: str):  # noqa: ANN202 - an opensmile.Smile, built once per process and level
    opensmile = _opensmile()
    feature_level = {
        "lld": opensmile.FeatureLevel.LowLevelDescriptors,
        "functionals": opensmile.FeatureLevel.Functionals,
    }[level]
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=feature_level)


@dataclass(frozen=True)
class Egemaps(FrontEnd):
    """eGeMAPSv02 low-level descriptors (frames) or functionals (one vector per utterance).

    Args:
        sample_rate: Audio is resampled to this rate before openSMILE sees it.
        min_duration_s: Shorter recordings are refused as unusable.
        level: "lld" (25 channels every 10 ms) or "functionals" (88 channels, one frame).
    """

    level: str = "lld"

    @property
    def blocks(self) -> dict[str, int]:
        return {self.level: LEVELS[self.level]}

    def check(self) -> None:
        if self.level not in LEVELS:
            raise FrontEndError(f"level={self.level!r}: choose one of {', '.join(LEVELS)}")

    def versions(self) -> dict[str, str]:
        return {"opensmile": _opensmile().__version__, "feature_set": "eGeMAPSv02"}

    def extract(self, signal: np.ndarray) -> np.ndarray:
        """(frames, 25) descriptors every 10 ms, or (1, 88) functionals, float32."""
        frame = _smile(self.level).process_signal(np.asarray(signal, dtype=np.float32), self.sample_rate)
        return frame.to_numpy(dtype=np.float32)

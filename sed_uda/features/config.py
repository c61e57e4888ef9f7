"""The frame-feature configuration: what `prepare` extracts and what a cache records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

FEATURE_NAMES: tuple[str, ...] = ("zcr", "mfcc", "mel", "contrast")
"""Feature blocks in the order they are stacked along the channel axis."""


@dataclass(frozen=True)
class FeatureConfig:
    """librosa parameters shared by all four features (one STFT serves them all)."""

    sample_rate: int = 16_000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    n_mfcc: int = 40
    n_contrast_bands: int = 6  # librosa returns n_bands + 1 rows
    contrast_fmin: float = 200.0
    min_duration_s: float = 0.25

    def channels(self) -> dict[str, int]:
        """Number of channels of each feature block."""
        return {"zcr": 1, "mfcc": self.n_mfcc, "mel": self.n_mels, "contrast": self.n_contrast_bands + 1}

    def slices(self) -> dict[str, slice]:
        """Channel range of each feature block in the stacked (frames, channels) array."""
        out, start = {}, 0
        for name, width in self.channels().items():
            out[name] = slice(start, start + width)
            start += width
        return out

    @property
    def n_channels(self) -> int:
        return sum(self.channels().values())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

"""A tiny feature cache on disk, in the store.py format, built from random frames.

Each speaker's frames are drawn around their own per-channel offset, and English and Mandarin around
opposite signs, so normalisation and language selection leave visible traces in the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sed_uda.corpus.layout import EMOTIONS
from sed_uda.features import store
from sed_uda.features.frontends.librosa import LibrosaFrames

SPEAKERS: dict[str, str] = {"0001": "zh", "0002": "zh", "0011": "en", "0012": "en"}
SPLIT_SIZES: dict[str, int] = {"train": 7, "val": 3, "test": 2}
LANGUAGE_SHIFT: dict[str, float] = {"en": 4.0, "zh": -4.0}


def write_cache(
    directory: Path,
    speakers: dict[str, str] = SPEAKERS,
    split_sizes: dict[str, int] = SPLIT_SIZES,
    frames: tuple[int, int] = (3, 40),
    seed: int = 0,
) -> Path:
    """Write a complete cache: `split_sizes[split]` utterances per speaker and split, each with a
    random number of frames in [frames[0], frames[1]]."""
    rng = np.random.default_rng(seed)
    config = LibrosaFrames()
    rows, blocks = [], []
    for s, (speaker, language) in enumerate(speakers.items()):
        centre = LANGUAGE_SHIFT[language] + rng.normal(size=config.n_channels)
        scale = rng.uniform(0.5, 2.0, size=config.n_channels)
        for split, count in split_sizes.items():
            for k in range(count):
                n = int(rng.integers(frames[0], frames[1] + 1))
                blocks.append(centre + scale * rng.normal(size=(n, config.n_channels)))
                utterance_id = f"{speaker}_{split}_{k:03d}"
                rows.append(
                    {
                        "utterance_id": utterance_id,
                        "path": f"{speaker}/{utterance_id}.wav",
                        "speaker": speaker,
                        "language": language,
                        "emotion": EMOTIONS[(s + k) % len(EMOTIONS)],
                        "split": split,
                        "n_frames": n,
                    }
                )
    directory.mkdir(parents=True, exist_ok=True)
    lengths = [len(block) for block in blocks]
    pd.DataFrame(rows).to_csv(directory / store.MANIFEST, index=False)
    np.save(directory / store.FEATURES, np.concatenate(blocks).astype(np.float16))
    np.save(directory / store.OFFSETS, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    meta = {"format": store.CACHE_FORMAT, "front_end": config.config(), "n_utterances": len(rows)}
    (directory / store.META).write_text(json.dumps(meta))
    return directory


@pytest.fixture(scope="session")
def random_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete cache of random frames, two speakers per language, every split (read-only). Unlike the
    corpus-built `tiny_cache`, its frames carry known language and speaker offsets."""
    return write_cache(tmp_path_factory.mktemp("cache"))

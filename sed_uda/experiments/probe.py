"""A quick linear probe of a feature cache: how separable are emotions within and across languages?

Each utterance becomes one vector (mean and standard deviation over time of every channel), is
standardised with the training language's statistics, and a logistic regression trained on one
language's train split is tested on the test split of both languages. The in-language rows show that
emotion is learnable; the cross-language rows show how much the language shift costs, i.e. how much
domain adaptation has to recover.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler

from sed_uda.corpus.layout import EMOTIONS, LANGUAGES
from sed_uda.data.pooling import utterance_statistics
from sed_uda.features.store import FeatureCache, load_cache

COLUMNS: tuple[str, ...] = ("train_language", "test_language", "accuracy", "macro_f1")


def pooled_features(cache: FeatureCache) -> np.ndarray:
    """(utterances, 2 * channels): per-channel mean and standard deviation over each utterance's frames,
    as the stats encoder pools them (`sed_uda.data.pooling`)."""
    frames = torch.from_numpy(np.asarray(cache.features))
    offsets = torch.from_numpy(cache.offsets.astype(np.int64))
    return utterance_statistics(frames, offsets, torch.arange(len(offsets) - 1)).numpy()


def _split_rows(cache: FeatureCache, cache_dir: Path) -> dict[tuple[str, str], np.ndarray]:
    """Rows of the train and test split of each language; ValueError naming any that is empty."""
    rows = {(lang, split): cache.select(lang, split) for lang in LANGUAGES for split in ("train", "test")}
    missing = [
        f"no {lang} utterances in the {split} split" for (lang, split), r in rows.items() if len(r) == 0
    ]
    if missing:
        raise ValueError(
            f"{cache_dir}: the cache has {', '.join(missing)}; "
            "the probe needs train and test utterances of both languages."
        )
    return rows


def probe(cache_dir: str | Path, seed: int = 0) -> pd.DataFrame:
    """Test accuracy and macro-F1 of a pooled-feature logistic regression for every language pair.

    Args:
        cache_dir: A complete feature cache (built by `sed-uda prepare`) holding both languages.
        seed: Seed of the logistic regression's solver.

    Returns:
        One row per (train_language, test_language) with columns `COLUMNS`; each training language's
        own test split comes first.
    """
    cache_dir = Path(cache_dir)
    cache = load_cache(cache_dir)
    rows = _split_rows(cache, cache_dir)
    vectors, labels = pooled_features(cache), cache.labels()
    results = []
    for train_language in LANGUAGES:
        train = rows[train_language, "train"]
        scaler = StandardScaler().fit(vectors[train])
        model = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(scaler.transform(vectors[train]), labels[train])
        for test_language in sorted(LANGUAGES, key=lambda language: language != train_language):
            test = rows[test_language, "test"]
            predicted = model.predict(scaler.transform(vectors[test]))
            results.append(
                {
                    "train_language": train_language,
                    "test_language": test_language,
                    "accuracy": accuracy_score(labels[test], predicted),
                    "macro_f1": f1_score(
                        labels[test], predicted, labels=range(len(EMOTIONS)), average="macro", zero_division=0
                    ),
                }
            )
    return pd.DataFrame(results, columns=list(COLUMNS))


def format_probe(results: pd.DataFrame) -> str:
    """A Markdown table of `probe` results (accuracy and macro-F1 to three decimals)."""
    lines = ["| train | test | accuracy | macro-F1 |", "|---|---|---|---|"]
    for row in results.itertuples(index=False):
        lines.append(
            f"| {row.train_language} | {row.test_language} | {row.accuracy:.3f} | {row.macro_f1:.3f} |"
        )
    return "\n".join(lines)

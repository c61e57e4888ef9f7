"""The linear probe: pooled features, one row per language pair, a Markdown table, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sed_uda.experiments.probe import COLUMNS, format_probe, pooled_features, probe
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.store import MANIFEST, FeatureCache


def test_pooled_features_are_mean_and_std_of_each_utterance() -> None:
    rng = np.random.default_rng(0)
    lengths = [3, 7, 1]
    features = rng.normal(size=(sum(lengths), 4)).astype(np.float16)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    cache = FeatureCache(pd.DataFrame(index=range(3)), features, offsets, LibrosaFrames(), {})
    pooled = pooled_features(cache)
    for row in range(3):
        frames = features[offsets[row] : offsets[row + 1]].astype(np.float64)
        np.testing.assert_allclose(pooled[row, :4], frames.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(pooled[row, 4:], np.sqrt(frames.var(axis=0) + 1e-5), atol=1e-3)


def test_probe_reports_every_language_pair_and_learns_emotion_in_language(tiny_cache: Path) -> None:
    results = probe(tiny_cache)
    assert list(results.columns) == list(COLUMNS)
    pairs = list(zip(results["train_language"], results["test_language"], strict=True))
    assert sorted(pairs) == [("en", "en"), ("en", "zh"), ("zh", "en"), ("zh", "zh")]
    assert results[["accuracy", "macro_f1"]].apply(lambda c: c.between(0, 1)).all().all()
    in_language = results[results["train_language"] == results["test_language"]]
    assert (in_language["accuracy"] > 1 / 5).all(), "in-language accuracy should beat chance (5 emotions)"


def test_format_probe_is_a_markdown_table_rounded_to_three_decimals() -> None:
    results = pd.DataFrame([("en", "en", 0.8125, 0.80049), ("en", "zh", 0.5, 0.33333)], columns=list(COLUMNS))
    assert format_probe(results).splitlines() == [
        "| train | test | accuracy | macro-F1 |",
        "|---|---|---|---|",
        "| en | en | 0.812 | 0.800 |",
        "| en | zh | 0.500 | 0.333 |",
    ]


def test_probe_names_the_missing_language(cache_copy: Path) -> None:
    manifest = pd.read_csv(cache_copy / MANIFEST, dtype=str, keep_default_na=False)
    manifest.loc[manifest["language"] == "zh", "split"] = "val"
    manifest.to_csv(cache_copy / MANIFEST, index=False)
    with pytest.raises(ValueError, match=r"no zh utterances in the train split"):
        probe(cache_copy)

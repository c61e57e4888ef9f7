"""The strong shallow baselines every results table carries, computed on the same inputs as the runs.

Each utterance becomes its pooled statistics (mean and std over time of every channel of the frames
the deep models see: the same feature blocks and standardisation), and a logistic regression is
trained on the source language's train split and tested on the target's test split:

- `logreg`: no adaptation;
- `logreg_coral`: CORAL alignment (Sun, Feng & Saenko, AAAI 2016, "Return of frustratingly easy
  domain adaptation"): each domain standardised with its own statistics (target: unlabelled
  target-train), then source vectors whitened with their covariance and re-coloured with the
  target's, X_s C_s^(-1/2) C_t^(1/2) (each C + I);
- `logreg_nap`: nuisance attribute projection (Solomonoff, Quillen & Campbell, Odyssey 2004/ICASSP
  2005): the subspace spanned by the train speakers' mean vectors, both languages (speaker identity
  is metadata, not an emotion label), projected out of every vector before the regression: the
  shallow counterpart of speaker-adversarial training, with the same information.

With `skada` installed (`pip install sed_uda[baselines]`), the baselines of
`sed_uda.experiments.skada_baselines` join them. Target labels are used only to score the target test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sed_uda.corpus.layout import EMOTIONS
from sed_uda.experiments import skada_baselines

BASELINES: dict[str, str] = {
    "logreg": "Logistic regression on pooled statistics (no adaptation)",
    "logreg_coral": "Logistic regression on pooled statistics + CORAL",
    "logreg_nap": "Logistic regression on pooled statistics with the train speakers' subspace projected out",
}


COMPUTATION = 4
"""Version of how the baselines are computed (2: `logreg_nap` added, one BLAS thread; 3: subspace
alignment's randomised PCA seeded; 4: its components capped by the rows, for small corpora): a stored
`baselines.json` of another version is recomputed."""


def coral_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Source rows re-coloured to the target covariance: X_s C_s^(-1/2) C_t^(1/2), C = cov + I."""

    def power(matrix: np.ndarray, exponent: float) -> np.ndarray:
        values, vectors = np.linalg.eigh(matrix)
        return (vectors * np.clip(values, 1e-8, None) ** exponent) @ vectors.T

    eye = np.eye(source.shape[1])
    source_cov = np.cov(source, rowvar=False) + eye
    target_cov = np.cov(target, rowvar=False) + eye
    return source @ power(source_cov, -0.5) @ power(target_cov, 0.5)


def remove_speaker_subspace(vectors: np.ndarray, speakers: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`vectors` standardised on `rows` with the span of the `rows` speakers' mean deviations from
    their common mean projected out (every utterance, including ones of other speakers)."""
    z = StandardScaler().fit(vectors[rows]).transform(vectors)
    centre = z[rows].mean(0)
    means = np.stack([z[rows[speakers[rows] == s]].mean(0) - centre for s in np.unique(speakers[rows])])
    _, values, directions = np.linalg.svd(means, full_matrices=False)
    basis = directions[values > values[0] * 1e-6].T
    return z - (z @ basis) @ basis.T


def direction_baselines(
    cache_dir: str | Path,
    source: str,
    target: str,
    normalization: str,
    features: Sequence[str],
    with_skada: bool = True,
) -> list[dict]:
    """Target-test accuracy and macro-F1 of `BASELINES` (and of skada's, when installed and
    `with_skada`) for one direction and input setting.

    Linear algebra runs on one BLAS thread: globally standardised vectors are ill-conditioned, and
    there the thread count alone moved a row by up to 0.02, so `table`, `study` and `demo` (whatever
    threads they run with) give the same numbers."""
    with threadpool_limits(1, user_api="blas"):
        return _direction_baselines(cache_dir, source, target, normalization, features, with_skada)


def _direction_baselines(
    cache_dir: str | Path,
    source: str,
    target: str,
    normalization: str,
    features: Sequence[str],
    with_skada: bool,
) -> list[dict]:
    from sed_uda.data.datamodule import CrossLingualDataModule

    data = CrossLingualDataModule(
        str(cache_dir), source, target, features=features, normalization=normalization
    )
    data.setup("fit")
    vectors = data.statistics().numpy()
    labels = data.labels(np.arange(len(data.manifest))).numpy()
    train, unlabelled, test = (
        data.rows(source, "train"),
        data.rows(target, "train"),
        data.rows(target, "test"),
    )
    source_scaler = StandardScaler().fit(vectors[train])
    target_scaler = StandardScaler().fit(vectors[unlabelled])  # label-free: target-train statistics
    x_train = source_scaler.transform(vectors[train])
    aligned = coral_align(x_train, target_scaler.transform(vectors[unlabelled]))
    speakers = data.speaker_ids(np.arange(len(data.manifest))).numpy()
    projected = remove_speaker_subspace(vectors, speakers, np.r_[train, unlabelled])
    projected_scaler = StandardScaler().fit(projected[train])
    predictions = {}
    for name, inputs, x_test in (
        ("logreg", x_train, source_scaler.transform(vectors[test])),
        ("logreg_coral", aligned, target_scaler.transform(vectors[test])),
        (
            "logreg_nap",
            projected_scaler.transform(projected[train]),
            projected_scaler.transform(projected[test]),
        ),
    ):
        predictions[name] = LogisticRegression(max_iter=3000).fit(inputs, labels[train]).predict(x_test)
    if with_skada and skada_baselines.available():
        predictions |= skada_baselines.skada_predictions(
            vectors[train], labels[train], vectors[unlabelled], vectors[test]
        )
    return [
        {
            "method": name,
            "direction": f"{source}2{target}",
            "target_acc": accuracy_score(labels[test], predicted),
            "target_f1": f1_score(
                labels[test], predicted, labels=range(len(EMOTIONS)), average="macro", zero_division=0
            ),
        }
        for name, predicted in predictions.items()
    ]

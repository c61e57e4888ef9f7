"""Shallow domain-adaptation baselines from `skada` (Gnassounou et al., 2024, scikit-learn-compatible
domain adaptation; `pip install sed_uda[baselines]`), on the same pooled vectors as `logreg`.

Each is a logistic regression behind one of skada's adapters, fitted on standardised source-train
vectors (labelled) and target-train vectors (unlabelled: their labels are never passed), and scored on
target test, so the shallow reference of a table is the best of a maintained library, not only ours:

- `logreg_sa`: subspace alignment (Fernando et al., ICCV 2013), 64 components (fewer for fewer dimensions;
  its PCA is randomised: seeded, so the row is the same every time);
- `logreg_tca`: transfer component analysis (Pan et al., IEEE TNN 2011), 64 components;
- `logreg_mlma`: multi-linear Monge alignment (Gnassounou et al., 2024).

MLMA estimates each domain's full covariance: when one is numerically singular (fewer utterances than
dimensions, or near-constant directions, as under global standardisation) its barycentre iteration
neither converges nor stays finite, and it is left out with a warning saying so. (Discriminator
reweighting needs scikit-learn's metadata routing switched on globally, and skada's OT mappings fail
numerically or fall far below on these vectors: they are left out.)
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


def _routing() -> AbstractContextManager:
    """scikit-learn's metadata routing on, in this thread, as skada's `sample_domain` needs."""
    import sklearn

    return sklearn.config_context(enable_metadata_routing=True)


def available() -> bool:
    """Whether skada is installed (the `baselines` extra)."""
    try:
        import skada  # noqa: F401
    except ImportError:
        return False
    return True


def _estimators(most_components: int) -> dict[str, object]:
    """The estimators; subspace alignment with at most `most_components` (its PCA can have no more than
    a domain's dimensions or rows)."""
    import skada

    def logreg() -> LogisticRegression:
        return LogisticRegression(max_iter=3000)

    return {
        "logreg_sa": skada.SubspaceAlignment(
            base_estimator=logreg(), n_components=min(64, most_components), random_state=0
        ),
        "logreg_tca": skada.TransferComponentAnalysis(base_estimator=logreg(), n_components=64),
        "logreg_mlma": skada.MultiLinearMongeAlignment(base_estimator=logreg()),
    }


MAX_CONDITION = 1e9
"""Largest condition number of a domain's covariance MLMA is run with (it works at ~1e6 on the per-speaker
pooled vectors; globally standardised ones reach ~5e10, where it fails after a minute)."""


def _condition(rows: np.ndarray) -> float:
    """Condition number of the covariance of `rows` (inf when singular)."""
    if len(rows) <= rows.shape[1]:
        return float("inf")
    values = np.linalg.eigvalsh(np.cov(rows, rowvar=False))
    return float(values[-1] / values[0]) if values[0] > 0 else float("inf")


def skada_predictions(
    source: np.ndarray, source_labels: np.ndarray, target: np.ndarray, test: np.ndarray
) -> dict[str, np.ndarray]:
    """Target-test predictions of every skada baseline; one that fails numerically is left out, with a
    warning naming it."""
    scaler = StandardScaler().fit(np.r_[source, target])
    x = scaler.transform(np.r_[source, target])
    y = np.r_[source_labels, -np.ones(len(target), dtype=int)]  # -1: skada's "unlabelled"
    domain = np.r_[np.ones(len(source), dtype=int), -np.ones(len(target), dtype=int)]
    out = {}
    estimators = _estimators(min(source.shape[1], len(source), len(target)))
    worst = max(_condition(x[domain == side]) for side in (1, -1))
    if worst > MAX_CONDITION:
        del estimators["logreg_mlma"]
        warnings.warn(
            "skada baseline logreg_mlma left out: a domain's covariance is numerically singular "
            f"(condition number {worst:.1e} > {MAX_CONDITION:.0e}; fewer utterances than dimensions, or "
            "near-constant directions), where its barycentre iteration runs for minutes and ends in NaN",
            stacklevel=2,
        )
    for name, estimator in estimators.items():
        # One BLAS thread, as `baselines.direction_baselines`: the same numbers from every command. skada
        # switches scikit-learn's metadata routing on when imported, but that setting is per thread: on
        # another thread (the demo computes baselines beside training) it must be switched on again.
        try:
            with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"), _routing():
                warnings.simplefilter("ignore")
                estimator.fit(x, y, sample_domain=domain)
                out[name] = estimator.predict(
                    scaler.transform(test), sample_domain=-np.ones(len(test), dtype=int)
                )
        except (ValueError, np.linalg.LinAlgError) as error:
            warnings.warn(
                f"skada baseline {name} failed on these vectors and is left out: {error}", stacklevel=2
            )
    return out

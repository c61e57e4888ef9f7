"""Why adaptation does (not) transfer: where the two languages' pooled features differ, and what a
source-only model gets wrong.

Everything is computed on the pooled statistics the stats encoder and the shallow baselines see (mean
and std over time of every frame channel, after the run's standardisation), with logistic
regressions, so a diagnosis takes seconds. Target labels are used here only to *describe* the shift
(per-block target accuracy, emotion profiles, confusion): this is analysis, never training or
selection. Four views:

- blocks: per feature block and statistic, the standardised mean difference between the languages'
  train splits (label-free), how well a classifier tells the languages apart, and the emotion
  accuracy of that block alone within the target language and across (source train -> target test);
- bands: mel bands grouped by the recording channels (below, inside and above the band both channels
  pass), with each language's raw level, each language's emotion F-ratio after standardisation, and
  the correlation of the emotion means across languages (does emotion move the band the same way?);
- confusion: the source-only logistic regression's target-test confusion matrix;
- levers: source -> target accuracy of the same regression on feature-level alignments (band-limited
  mel, each domain standardised with its own pooled statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import StandardScaler

from sed_uda.corpus.layout import EMOTIONS
from sed_uda.features.frontends.librosa import BLOCK_NAMES, LibrosaFrames

SHARED_BAND_HZ = (150.0, 5500.0)
"""The band both bundled recording channels pass (en 60-7,600 Hz, zh 150-5,500 Hz)."""


@dataclass
class PooledCorpus:
    """Pooled vectors (utterances, 2 * channels: means then stds), labels, the rows of each split and
    every utterance's speaker index (`CrossLingualDataModule.speaker_ids`)."""

    vectors: np.ndarray
    labels: np.ndarray
    rows: dict[str, np.ndarray]
    config: LibrosaFrames
    source: str
    target: str
    speakers: np.ndarray

    def columns(self, block: str, statistic: str) -> np.ndarray:
        """Columns of one feature block's means ("mean") or stds ("std")."""
        channels = np.arange(self.config.n_channels)[self.config.slices()[block]]
        return channels + (self.config.n_channels if statistic == "std" else 0)


def load_pooled(cache_dir: str | Path, source: str, target: str, normalization: str) -> PooledCorpus:
    """Pooled vectors of every utterance of a cache under a standardisation ("speaker", "global", "none")."""
    from sed_uda.data.datamodule import CrossLingualDataModule

    data = CrossLingualDataModule(str(cache_dir), source, target, normalization=normalization)
    data.setup("fit")
    vectors = data.statistics().numpy().astype(np.float64)
    rows = {
        "source_train": data.rows(source, "train"),
        "target_train": data.rows(target, "train"),
        "target_test": data.rows(target, "test"),
    }
    everyone = np.arange(len(data.manifest))
    labels, speakers = data.labels(everyone).numpy(), data.speaker_ids(everyone).numpy()
    return PooledCorpus(vectors, labels, rows, data.front_end, source, target, speakers)


def transfer_accuracy(
    corpus: PooledCorpus, columns: np.ndarray, train: str = "source_train", own_scaling: bool = False
) -> tuple[float, np.ndarray]:
    """Target-test accuracy and predictions of a logistic regression on `columns` trained on `train`;
    `own_scaling` standardises the target with its own (unlabelled train) statistics."""
    x = corpus.vectors[:, columns]
    fit_rows, test_rows = corpus.rows[train], corpus.rows["target_test"]
    scaler = StandardScaler().fit(x[fit_rows])
    test_scaler = StandardScaler().fit(x[corpus.rows["target_train"]]) if own_scaling else scaler
    model = LogisticRegression(max_iter=3000).fit(scaler.transform(x[fit_rows]), corpus.labels[fit_rows])
    predicted = model.predict(test_scaler.transform(x[test_rows]))
    return accuracy_score(corpus.labels[test_rows], predicted), predicted


def block_shift(corpus: PooledCorpus) -> list[dict]:
    """Per feature block and statistic: language shift (label-free) and emotion accuracy."""
    source, target = corpus.rows["source_train"], corpus.rows["target_train"]
    domain = np.r_[np.zeros(len(source)), np.ones(len(target))]
    out = []
    for block in BLOCK_NAMES:
        for statistic in ("mean", "std"):
            columns = corpus.columns(block, statistic)
            x_s, x_t = corpus.vectors[source][:, columns], corpus.vectors[target][:, columns]
            spread = np.sqrt((x_s.var(0) + x_t.var(0)) / 2) + 1e-8
            x = StandardScaler().fit_transform(np.r_[x_s, x_t])
            out.append(
                {
                    "block": block,
                    "statistic": statistic,
                    "channels": len(columns),
                    "smd": float(np.mean(np.abs(x_s.mean(0) - x_t.mean(0)) / spread)),
                    "domain_acc": float(
                        cross_val_score(LogisticRegression(max_iter=2000), x, domain, cv=3).mean()
                    ),
                    "in_target_acc": transfer_accuracy(corpus, columns, train="target_train")[0],
                    "transfer_acc": transfer_accuracy(corpus, columns)[0],
                }
            )
    return out


def mel_centres(config: LibrosaFrames) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of the cache's feature config."""
    import librosa

    return librosa.mel_frequencies(config.n_mels + 2, fmin=0.0, fmax=config.sample_rate / 2)[1:-1]


def band_ranges(config: LibrosaFrames) -> dict[str, np.ndarray]:
    """Mel band indices below, inside and above `SHARED_BAND_HZ`."""
    centres, (low, high) = mel_centres(config), SHARED_BAND_HZ
    return {
        f"< {low:.0f} Hz": np.flatnonzero(centres < low),
        f"{low:.0f}-{high:.0f} Hz (shared)": np.flatnonzero((centres >= low) & (centres <= high)),
        f"> {high:.0f} Hz": np.flatnonzero(centres > high),
    }


def f_ratio(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per column: variance of the class means over the mean within-class variance (ANOVA F shape)."""
    means = np.stack([x[labels == k].mean(0) for k in np.unique(labels)])
    within = np.mean([x[labels == k].var(0) for k in np.unique(labels)], axis=0)
    return means.var(0) / (within + 1e-12)


def band_view(corpus: PooledCorpus, raw: PooledCorpus) -> list[dict]:
    """Per mel range: raw level per language, emotion F-ratio per language (this standardisation) of
    the band means, and the cross-language correlation of the emotion means."""
    mel = corpus.columns("mel", "mean")
    out = []
    for name, bands in band_ranges(corpus.config).items():
        if len(bands) == 0:
            continue
        row = {"range": name, "bands": len(bands)}
        profiles = {}
        for side in ("source", "target"):
            rows = corpus.rows[f"{side}_train"]
            language = getattr(corpus, side)
            row[f"{language}_level"] = float(raw.vectors[rows][:, mel[bands]].mean())
            x, y = corpus.vectors[rows][:, mel[bands]], corpus.labels[rows]
            row[f"{language}_f"] = float(np.median(f_ratio(x, y)))
            profiles[side] = np.stack([x[y == k].mean(0) for k in range(len(EMOTIONS))])
        correlations = [
            np.corrcoef(profiles["source"][:, b], profiles["target"][:, b])[0, 1] for b in range(len(bands))
        ]
        row["profile_corr"] = float(np.nanmedian(correlations))
        out.append(row)
    return out


def levers(corpus: PooledCorpus) -> list[dict]:
    """Source -> target accuracy of the pooled logistic regression under feature-level alignments."""
    everything = np.arange(corpus.vectors.shape[1])
    shared = band_ranges(corpus.config)[f"{SHARED_BAND_HZ[0]:.0f}-{SHARED_BAND_HZ[1]:.0f} Hz (shared)"]
    mel = np.r_[corpus.columns("mel", "mean"), corpus.columns("mel", "std")]
    out_of_band = np.setdiff1d(
        mel, np.r_[corpus.columns("mel", "mean")[shared], corpus.columns("mel", "std")[shared]]
    )
    limited = np.setdiff1d(everything, out_of_band)
    variants = [
        ("all blocks (the `logreg` baseline)", everything, False),
        ("mel limited to the shared band", limited, False),
        ("each domain standardised with its own pooled statistics", everything, True),
        ("both", limited, True),
    ]
    return [
        {"inputs": name, "transfer_acc": transfer_accuracy(corpus, columns, own_scaling=own)[0]}
        for name, columns, own in variants
    ]


def diagnose(cache_dir: str | Path, direction: str = "zh2en", normalization: str = "speaker") -> str:
    """The Markdown diagnosis of one direction of a cache under one standardisation."""
    source, target = direction[:2], direction[3:]
    corpus = load_pooled(cache_dir, source, target, normalization)
    raw = load_pooled(cache_dir, source, target, "none")
    lines = [
        f"### {source} -> {target}, `{normalization}` standardisation, cache `{cache_dir}`",
        "",
        "Feature blocks (pooled mean / std over time; SMD: mean |standardised mean difference| between the "
        "languages' train splits; language acc: 3-fold logistic regression en vs zh, 0.5 = no shift; "
        f"{target} acc: emotion accuracy of the block trained and tested in {target} (descriptive, target "
        f"labels); transfer acc: trained on {source}, tested on {target}):",
        "",
        f"| block | statistic | channels | SMD | language acc | {target} acc | transfer acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in block_shift(corpus):
        lines.append(
            f"| {r['block']} | {r['statistic']} | {r['channels']} | {r['smd']:.2f} | {r['domain_acc']:.3f} | "
            f"{r['in_target_acc']:.3f} | {r['transfer_acc']:.3f} |"
        )
    lines += [
        "",
        "Mel bands by recording channel (level: mean raw log-mel of the band means; F: median emotion "
        "F-ratio of the band means after standardisation, per language; profile corr: median correlation "
        "across languages of the five emotion means of a band):",
        "",
        f"| mel range | bands | {source} level | {target} level | {source} F | {target} F | profile corr |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in band_view(corpus, raw):
        lines.append(
            f"| {r['range']} | {r['bands']} | {r[f'{source}_level']:.1f} | {r[f'{target}_level']:.1f} | "
            f"{r[f'{source}_f']:.2f} | {r[f'{target}_f']:.2f} | {r['profile_corr']:+.2f} |"
        )
    accuracy, predicted = transfer_accuracy(corpus, np.arange(corpus.vectors.shape[1]))
    truth = corpus.labels[corpus.rows["target_test"]]
    matrix = confusion_matrix(truth, predicted, labels=range(len(EMOTIONS)))
    lines += [
        "",
        f"Source-only logistic regression on {target} test (accuracy {accuracy:.3f}); rows: true emotion, "
        "columns: predicted, last column: recall:",
        "",
        "| true \\ predicted | " + " | ".join(EMOTIONS) + " | recall |",
        "|---|" + "---|" * (len(EMOTIONS) + 1),
    ]
    for k, emotion in enumerate(EMOTIONS):
        recall = matrix[k, k] / max(matrix[k].sum(), 1)
        lines.append(f"| {emotion} | " + " | ".join(str(v) for v in matrix[k]) + f" | {recall:.2f} |")
    lines += [
        "",
        "Feature-level alignments, the same regression (label-free):",
        "",
        "| inputs | transfer acc |",
    ]
    lines.append("|---|---|")
    lines += [f"| {r['inputs']} | {r['transfer_acc']:.3f} |" for r in levers(corpus)]
    return "\n".join(lines)

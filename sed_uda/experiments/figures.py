"""The poster's figures as matplotlib Figures: corpus, audio and features, confusion matrices, training
curves and embedding scatters.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so nothing is kept in a global
figure list and the figures render with any backend (Agg in scripts, inline in notebooks). Functions that
read run folders say which file is missing and what to run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import librosa
import librosa.display
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from sed_uda.corpus.layout import EMOTIONS, SPLITS
from sed_uda.features.frontends.librosa import LibrosaFrames

LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "Mandarin"}
LANGUAGE_COLOURS: dict[str, str] = {"en": "tab:blue", "zh": "tab:orange"}
EMOTION_COLOURS: dict[str, str] = dict(
    zip(EMOTIONS, ("dimgray", "gold", "crimson", "royalblue", "seagreen"), strict=True)
)
FEATURE_TITLES: dict[str, str] = {
    "zcr": "zero-crossing rate",
    "mfcc": "MFCC",
    "mel": "log-mel spectrogram (dB)",
    "contrast": "spectral contrast (dB)",
}


def _language_label(language: str) -> str:
    return f"{language} ({LANGUAGE_NAMES[language]})" if language in LANGUAGE_NAMES else language


# ---- corpus ------------------------------------------------------------------------------------------


def corpus_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per language and emotion: speakers, utterances per split and in total, and minutes of audio.

    `manifest` is a cache manifest (it needs language, emotion, split, speaker and duration_s). Every
    emotion of EMOTIONS is listed for every language, so a missing one shows as 0.
    """
    keys = ["language", "emotion"]
    index = pd.MultiIndex.from_product([sorted(manifest["language"].unique()), EMOTIONS], names=keys)
    per_split = pd.crosstab([manifest["language"], manifest["emotion"]], manifest["split"])
    table = per_split.reindex(index=index, columns=list(SPLITS), fill_value=0)
    grouped = manifest.groupby(keys)
    table.insert(0, "speakers", grouped["speaker"].nunique().reindex(index, fill_value=0))
    table["utterances"] = table[list(SPLITS)].sum(axis=1)
    table["minutes"] = (grouped["duration_s"].sum() / 60).reindex(index, fill_value=0.0).round(2)
    table.columns.name = None
    return table


def corpus_distribution(manifest: pd.DataFrame) -> Figure:
    """Figure 1: utterances and minutes of audio per emotion and language, and speakers per language."""
    summary = corpus_summary(manifest)
    languages = list(summary.index.get_level_values("language").unique())
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    counts, minutes, speakers = fig.subplots(1, 3, width_ratios=[2, 2, 1])
    x = np.arange(len(EMOTIONS))
    width = 0.8 / len(languages)
    for k, language in enumerate(languages):
        rows = summary.loc[language]
        colour = LANGUAGE_COLOURS.get(language)
        label = _language_label(language)
        shift = (k - (len(languages) - 1) / 2) * width
        counts.bar(x + shift, rows["utterances"], width, color=colour, label=label)
        minutes.bar(x + shift, rows["minutes"], width, color=colour, label=label)
    for ax, title in [(counts, "utterances"), (minutes, "total duration (min)")]:
        ax.set_xticks(x, EMOTIONS)
        ax.set_title(f"{title} per emotion")
    fig.legend(
        *counts.get_legend_handles_labels(), loc="outside upper center", ncols=len(languages), frameon=False
    )
    per_language = manifest.groupby("language")["speaker"].nunique().reindex(languages, fill_value=0)
    speakers.bar(
        [_language_label(lang) for lang in languages],
        per_language.to_numpy(),
        color=[LANGUAGE_COLOURS.get(lang) for lang in languages],
    )
    speakers.set_title("speakers per language")
    return fig


def example_utterances(manifest: pd.DataFrame, emotion: str = "happy") -> pd.DataFrame:
    """One utterance of `emotion` per language, with the same ESD id number where the languages share one.

    Rows keep the manifest's index (the cache row). The lowest shared number and, per language, the first
    speaker are taken, so the choice is the same on every run.
    """
    rows = manifest[manifest["emotion"] == emotion]
    if rows.empty:
        raise ValueError(
            f"the manifest has no {emotion!r} utterances (emotions: {sorted(manifest['emotion'].unique())})"
        )
    numbers = rows["utterance_id"].str.split("_").str[-1]
    per_language = [set(numbers[rows["language"] == lang]) for lang in rows["language"].unique()]
    shared = sorted(set.intersection(*per_language))
    if shared:
        rows = rows[numbers == shared[0]]
    return rows.sort_values(["language", "speaker", "utterance_id"]).groupby("language").head(1)


# ---- audio and features ------------------------------------------------------------------------------


def waveforms(signals: Mapping[str, np.ndarray], sample_rate: int) -> Figure:
    """One waveform panel per entry (title -> mono samples), on a shared time axis in seconds."""
    fig = Figure(figsize=(11, 1.9 * len(signals)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(signals), 1, sharex=True))
    for ax, (title, signal) in zip(axes, signals.items(), strict=True):
        librosa.display.waveshow(signal, sr=sample_rate, ax=ax)
        ax.set_title(title, loc="left")
        ax.set(xlabel="time (s)", ylabel="amplitude")
        ax.label_outer()
    return fig


def feature_panels(utterances: Mapping[str, np.ndarray], config: LibrosaFrames) -> Figure:
    """The four feature blocks (rows: zcr, MFCC, log-mel, contrast) of each utterance (columns).

    `utterances` maps a column title to the (frames, channels) features of one utterance, as stored in
    the cache; `config` is the cache's librosa front end, which tells the channel slices and the frame rate.
    """
    slices = config.slices()
    fig = Figure(figsize=(6 * len(utterances), 9), layout="constrained")
    grid = np.asarray(fig.subplots(len(slices), len(utterances), squeeze=False))
    frame_axis = {"sr": config.sample_rate, "hop_length": config.hop_length}
    for column, (title, features) in enumerate(utterances.items()):
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != config.n_channels:
            raise ValueError(
                f"features of {title!r} have shape {features.shape}; expected (frames, {config.n_channels}) "
                "as stored in a cache built with this feature config"
            )
        for row, (name, channels) in enumerate(slices.items()):
            ax = grid[row, column]
            block = features[:, channels].T
            if name == "zcr":
                times = librosa.frames_to_time(np.arange(len(features)), **frame_axis)
                ax.plot(times, block[0], color="black", linewidth=0.8)
                ax.set_xlim(times[0], times[-1])
                ax.set_ylabel("rate")
            else:
                y_axis = "mel" if name == "mel" else None
                mesh = librosa.display.specshow(block, x_axis="time", y_axis=y_axis, ax=ax, **frame_axis)
                fig.colorbar(mesh, ax=ax, pad=0.01)
                if y_axis is None:
                    ax.set_ylabel("coefficient" if name == "mfcc" else "band")
            ax.set_title(f"{title}: {FEATURE_TITLES[name]}" if row == 0 else FEATURE_TITLES[name], loc="left")
            ax.set_xlabel("time (s)" if row == len(slices) - 1 else "")
    return fig


# ---- results -----------------------------------------------------------------------------------------


def read_confusions(
    runs: str | Path, method: str = "dann", encoder: str = "cnn1d", domain: str = "target"
) -> dict[str, pd.DataFrame]:
    """Test confusion matrices of `domain` per direction, summed over seeds (rows = actual class).

    Reads `<runs>/<method>_<encoder>_<direction>/seed*/<direction>_test_<domain>_confusion.csv`, which the
    test stage writes for the run's primary selection rule.
    """
    pattern = f"{method}_{encoder}_*/seed*/*_test_{domain}_confusion.csv"
    matrices: dict[str, pd.DataFrame] = {}
    for path in sorted(Path(runs).glob(pattern)):
        direction = path.name.split("_test_")[0]
        frame = pd.read_csv(path, index_col=0).reindex(
            index=list(EMOTIONS), columns=list(EMOTIONS), fill_value=0
        )
        matrices[direction] = matrices[direction] + frame if direction in matrices else frame
    if not matrices:
        raise FileNotFoundError(
            f"no {domain} test confusion matrices of {method}_{encoder} under {runs} (looked for {pattern}); "
            "run `sed-uda grid` first: the test stage writes them beside each run"
        )
    return matrices


def confusion_matrices(matrices: Mapping[str, pd.DataFrame], normalize: bool = True) -> Figure:
    """One confusion-matrix panel per direction; `normalize` shows each actual class's row as fractions."""
    fig = Figure(figsize=(4.6 * len(matrices), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(matrices)))
    for ax, (direction, frame) in zip(axes, matrices.items(), strict=True):
        counts = frame.to_numpy(dtype=float)
        values = counts
        if normalize:
            totals = counts.sum(axis=1, keepdims=True)
            values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        display = ConfusionMatrixDisplay(values, display_labels=list(frame.columns))
        display.plot(
            ax=ax,
            colorbar=False,
            cmap="Blues",
            values_format=".2f" if normalize else ".0f",
            xticks_rotation=45,
        )
        ax.set_title(f"{direction.replace('2', ' → ')}  (n = {int(counts.sum())})")
    return fig


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The CSVLogger metrics of a run, its whole history across resumes.

    A resumed `fit` continues its run's `csv/version_<k>/metrics.csv`; a run resumed into a new version
    folder (or logs from before resumes continued the log) is stitched together: each version's rows
    replace the earlier versions' rows from its first step on, so a fresh run in the same folder, which
    starts at step 0, shows alone.
    """
    files = sorted(
        Path(run_dir).glob("csv/version_*/metrics.csv"),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if not files:
        raise FileNotFoundError(
            f"{Path(run_dir) / 'csv'} holds no version_*/metrics.csv; train with the CSVLogger of "
            "configs/trainer/*.yaml (e.g. `sed-uda grid`) and pass the run folder <runs>/<cell>/seed<k>"
        )
    history = pd.read_csv(files[0])
    for file in files[1:]:
        metrics = pd.read_csv(file)
        earlier = history[history["step"] < metrics["step"].min()] if len(metrics) else history
        history = pd.concat([earlier, metrics], ignore_index=True)
    return history


def training_curves(metrics: pd.DataFrame) -> Figure:
    """GRL lambda, training losses and validation accuracies against the training step.

    `metrics` is a run's metrics.csv (see `read_metrics`); panels appear for what the run logged
    (a reversal coefficient `<method>_lambda` and adaptation losses `<method>_loss` exist for adapting
    runs only).
    """
    columns = [c for c in metrics.columns if c.endswith("/train/class_loss")]
    if not columns or metrics[columns[0]].isna().all():
        raise ValueError(
            "the metrics hold no training losses (<direction>/train/class_loss); the run logged fewer steps "
            "than trainer.log_every_n_steps: train longer or set --trainer.log_every_n_steps=1"
        )
    direction = columns[0].split("/")[0]
    train = [c for c in metrics.columns if c.startswith(f"{direction}/train/")]
    panels = {
        "GRL λ": [c for c in train if c.endswith("_lambda")],
        "training loss": [f"{direction}/train/class_loss"]
        + [c for c in train if c.endswith("_loss") and not c.endswith("/class_loss")],
        "validation accuracy": [f"{direction}/val/source_acc", f"{direction}/val/target_acc"],
    }
    panels = {title: [c for c in keys if c in metrics] for title, keys in panels.items()}
    panels = {title: keys for title, keys in panels.items() if keys}
    fig = Figure(figsize=(4.5 * len(panels), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharex=True))
    for ax, (title, keys) in zip(axes, panels.items(), strict=True):
        for key in keys:
            logged = metrics[["step", key]].dropna()
            ax.plot(
                logged["step"],
                logged[key],
                marker="." if len(logged) < 30 else None,
                label=key.split("/")[-1],
            )
        ax.set_title(title)
        ax.set_xlabel("step")
        if len(keys) > 1:
            ax.legend(frameon=False)
    return fig


def embedding_scatter(panels: Mapping[str, tuple[np.ndarray, pd.DataFrame]]) -> Figure:
    """2-D embeddings coloured by domain (language, left) and by emotion (right), one row per entry.

    `panels` maps a row title (e.g. "before adaptation") to (points (n, 2), rows with language and
    emotion columns, one per point), as returned by `embeddings.embed_rows` and `project_2d`.
    """
    fig = Figure(figsize=(10, 4.3 * len(panels)), layout="constrained")
    grid = np.asarray(fig.subplots(len(panels), 2, squeeze=False))
    for (by_domain, by_emotion), (title, (points, rows)) in zip(grid, panels.items(), strict=True):
        if len(points) != len(rows):
            raise ValueError(
                f"{title!r}: {len(points)} points but {len(rows)} rows; pass the rows embed_rows returned"
            )
        for ax, column, colours in [
            (by_domain, "language", LANGUAGE_COLOURS),
            (by_emotion, "emotion", EMOTION_COLOURS),
        ]:
            values = rows[column].to_numpy()
            for value in [v for v in colours if v in set(values)] + sorted(set(values) - set(colours)):
                keep = values == value
                label = _language_label(value) if column == "language" else value
                ax.scatter(*points[keep].T, s=12, alpha=0.75, color=colours.get(value), label=label)
            ax.set_title(f"{title}: by {'domain' if column == 'language' else 'emotion'}")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.legend(frameon=False, fontsize="small", markerscale=1.5)
    return fig

"""Notebook figures and embeddings: plotted values are the data's, embeddings cover the rows asked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sed_uda.corpus.layout import EMOTIONS
from sed_uda.experiments import figures
from sed_uda.experiments.embeddings import embed_rows, project_2d, selected_checkpoint
from sed_uda.experiments.runner import run_experiment
from sed_uda.features.store import load_cache
from sed_uda.models.selection.rules import DEFAULT_RULE
from sed_uda.models.uda import UDAModule
from tests.conftest import FAST, REPO


@pytest.fixture(scope="module")
def dann_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch DANN run (record, checkpoints, metrics.csv, confusion CSVs)."""
    run_dir = tmp_path_factory.mktemp("runs") / "dann_cnn1d_en2zh" / "seed0"
    run_experiment(
        [
            REPO / "configs" / "experiment" / "en2zh.yaml",
            REPO / "configs" / "encoder" / "cnn1d.yaml",
            REPO / "configs" / "adaptation" / "dann.yaml",
        ],
        run_dir,
        [
            *FAST,
            f"--data.cache_dir={tiny_cache}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.log_every_n_steps=1",
        ],
    )
    return run_dir


def _bar_heights(ax) -> dict[str, list[float]]:  # noqa: ANN001
    return {c.get_label(): [bar.get_height() for bar in c] for c in ax.containers}


def test_distribution_bars_equal_manifest_counts_and_durations(tiny_cache: Path) -> None:
    manifest = load_cache(tiny_cache).manifest
    counts, minutes, speakers = figures.corpus_distribution(manifest).axes
    for language in ("en", "zh"):
        rows = manifest[manifest["language"] == language]
        label = f"{language} ({figures.LANGUAGE_NAMES[language]})"
        expected = rows["emotion"].value_counts().reindex(EMOTIONS).tolist()
        assert _bar_heights(counts)[label] == expected
        duration = (rows.groupby("emotion")["duration_s"].sum() / 60).reindex(EMOTIONS).to_numpy()
        np.testing.assert_allclose(_bar_heights(minutes)[label], duration, atol=0.005)
    heights = [bar.get_height() for bar in speakers.patches]
    assert heights == manifest.groupby("language")["speaker"].nunique().sort_index().tolist()


def test_summary_lists_every_emotion_and_split(tiny_cache: Path) -> None:
    manifest = load_cache(tiny_cache).manifest
    without_sad = manifest[~((manifest["language"] == "zh") & (manifest["emotion"] == "sad"))]
    summary = figures.corpus_summary(without_sad)
    assert summary.loc[("zh", "sad"), "utterances"] == 0
    assert summary["utterances"].sum() == len(without_sad)
    assert (summary[["train", "val", "test"]].sum(axis=1) == summary["utterances"]).all()
    en = manifest[manifest["language"] == "en"]
    assert (
        summary.loc[("en", "happy"), "test"] == ((en["emotion"] == "happy") & (en["split"] == "test")).sum()
    )


def test_examples_share_the_id_number_across_languages(tiny_cache: Path) -> None:
    manifest = load_cache(tiny_cache).manifest
    examples = figures.example_utterances(manifest, "angry")
    assert sorted(examples["language"]) == ["en", "zh"]
    assert (examples["emotion"] == "angry").all()
    assert examples["utterance_id"].str.split("_").str[-1].nunique() == 1
    with pytest.raises(ValueError, match="no 'bored' utterances"):
        figures.example_utterances(manifest, "bored")


def test_feature_panels_plot_the_cached_values(tiny_cache: Path) -> None:
    cache = load_cache(tiny_cache)
    features = cache.utterance(0)
    fig = figures.feature_panels({"first": features}, cache.front_end)
    zcr_line = fig.axes[0].lines[0]
    np.testing.assert_allclose(zcr_line.get_ydata(), features[:, 0].astype(np.float32))
    with pytest.raises(ValueError, match=r"expected \(frames, 176\)"):
        figures.feature_panels({"cut": features[:, :40]}, cache.front_end)


def test_confusions_sum_seeds_and_rows_normalise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    total = np.zeros((len(EMOTIONS), len(EMOTIONS)))
    for seed in (0, 1):
        matrix = rng.integers(0, 5, (len(EMOTIONS), len(EMOTIONS)))
        total += matrix
        folder = tmp_path / "dann_cnn1d_en2zh" / f"seed{seed}"
        folder.mkdir(parents=True)
        frame = pd.DataFrame(matrix, index=list(EMOTIONS), columns=list(EMOTIONS))
        frame.index.name = "actual \\ predicted"
        frame.to_csv(folder / "en2zh_test_target_confusion.csv")
    matrices = figures.read_confusions(tmp_path)
    assert list(matrices) == ["en2zh"]
    np.testing.assert_array_equal(matrices["en2zh"].to_numpy(), total)
    shown = figures.confusion_matrices(matrices).axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, total / total.sum(axis=1, keepdims=True))
    with pytest.raises(FileNotFoundError, match="source_only_cnn1d"):
        figures.read_confusions(tmp_path, method="source_only")


def test_training_curves_plot_logged_lambda(dann_run: Path) -> None:
    metrics = figures.read_metrics(dann_run)
    assert "en2zh/train/dann_lambda" in metrics and "en2zh/train/dann_loss" in metrics
    fig = figures.training_curves(metrics)
    assert [ax.get_title() for ax in fig.axes] == ["GRL λ", "training loss", "validation accuracy"]
    logged = metrics["en2zh/train/dann_lambda"].dropna().to_numpy()
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), logged)
    with pytest.raises(ValueError, match="log_every_n_steps"):
        figures.training_curves(metrics[metrics["en2zh/train/class_loss"].isna()])
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        figures.read_metrics(dann_run / "checkpoints")


def test_a_checkpoint_rebuilds_its_configured_model(dann_run: Path) -> None:
    model = UDAModule.load_from_checkpoint(selected_checkpoint(dann_run), map_location="cpu")
    assert type(model.encoder).__name__ == "CNN1dEncoder" and model.encoder.out_dim == 128
    assert model.encoder.in_channels == 176  # linked from the data module's channels
    assert [type(a).__name__ for a in model.adaptations] == ["DANN"]


def test_embed_rows_returns_one_embedding_per_requested_row(dann_run: Path, tiny_cache: Path) -> None:
    checkpoint = selected_checkpoint(dann_run)
    rows, embeddings = embed_rows(checkpoint, tiny_cache, max_per_group=3, splits=["train"])
    model = UDAModule.load_from_checkpoint(checkpoint, map_location="cpu")
    assert embeddings.shape == (len(rows), model.encoder.out_dim)
    assert (rows["split"] == "train").all()
    assert rows.groupby(["language", "emotion"]).size().to_dict() == {
        (language, emotion): 3 for language in ("en", "zh") for emotion in EMOTIONS
    }
    assert np.isfinite(embeddings).all()
    # Row order is the cache order and each vector is that utterance's: re-embedding a subset agrees.
    some, again = embed_rows(checkpoint, tiny_cache, max_per_group=1, splits=["train"])
    position = {row: k for k, row in enumerate(rows.index)}
    for k, row in enumerate(some.index):
        if row in position:
            np.testing.assert_allclose(again[k], embeddings[position[row]], rtol=1e-5, atol=1e-5)


def test_selected_checkpoint_follows_a_moved_runs_folder(dann_run: Path, tmp_path: Path) -> None:
    assert selected_checkpoint(dann_run).name == f"best-{DEFAULT_RULE}.ckpt"
    moved = Path(shutil.copytree(dann_run, tmp_path / "moved"))
    assert selected_checkpoint(moved, "source_acc") == moved / "checkpoints" / "best-source_acc.ckpt"
    with pytest.raises(ValueError, match="no selection rule 'best'"):
        selected_checkpoint(moved, "best")
    with pytest.raises(FileNotFoundError, match="record.json"):
        selected_checkpoint(tmp_path)
    record = json.loads((moved / "record.json").read_text())
    record["selection"]["target_im"]["checkpoint"] = str(tmp_path / "elsewhere" / "best-target_im.ckpt")
    (moved / "record.json").write_text(json.dumps(record))
    (moved / "checkpoints" / "best-target_im.ckpt").unlink()
    with pytest.raises(FileNotFoundError, match="'target_im' checkpoint .* is gone"):
        selected_checkpoint(moved, "target_im")


def test_project_2d_is_seeded_and_scatter_shows_every_point() -> None:
    embeddings = np.random.default_rng(0).normal(size=(20, 8))
    points = project_2d(embeddings, seed=3)
    assert points.shape == (20, 2)
    np.testing.assert_allclose(points, project_2d(embeddings, seed=3))
    with pytest.raises(ValueError, match="at least 4"):
        project_2d(embeddings[:3])
    rows = pd.DataFrame({"language": ["en", "zh"] * 10, "emotion": list(EMOTIONS) * 4})
    by_domain, by_emotion = figures.embedding_scatter({"after": (points, rows)}).axes
    assert sum(len(c.get_offsets()) for c in by_domain.collections) == 20
    assert sorted(c.get_label() for c in by_emotion.collections) == sorted(EMOTIONS)
    with pytest.raises(ValueError, match="19 points but 20 rows"):
        figures.embedding_scatter({"after": (points[:19], rows)})

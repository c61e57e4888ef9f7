"""Encoder embeddings of cached utterances from a trained checkpoint, and their 2-D t-SNE projection.

The data module is rebuilt from the hyper-parameters saved in the checkpoint, so the utterances are
normalised and cropped exactly as the model saw them in evaluation; only the cache folder may differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.manifold import TSNE

from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.experiments.runner import RECORD, read_record
from sed_uda.models.uda import UDAModule


def selected_checkpoint(run_dir: str | Path, rule: str | None = None) -> Path:
    """The checkpoint a finished run selected under `rule` (default: the run's primary rule).

    The run's own `<run_dir>/checkpoints/` copy is preferred to the absolute path in the record, so a
    moved or copied runs folder still gives its own checkpoint.
    """
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record is None:
        raise FileNotFoundError(
            f"{run_dir / RECORD} does not exist: the run is unfinished or the path is wrong"
        )
    rule = rule or record["primary_rule"]
    if rule not in record["selection"]:
        raise ValueError(
            f"{run_dir / RECORD} has no selection rule {rule!r} (it has {sorted(record['selection'])})"
        )
    recorded = Path(record["selection"][rule]["checkpoint"])
    local = run_dir / "checkpoints" / recorded.name
    for path in (local, recorded):
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the {rule!r} checkpoint of {run_dir} is gone: neither {local} nor {recorded} exists; "
        f"rerun the cell (delete {run_dir / RECORD} and run `sed-uda grid` again)"
    )


def _sample_rows(
    manifest: pd.DataFrame, max_per_group: int | None, splits: Sequence[str] | None, seed: int
) -> np.ndarray:
    """Sorted cache rows: at most `max_per_group` random utterances per (language, emotion) of `splits`."""
    rows = manifest if splits is None else manifest[manifest["split"].isin(list(splits))]
    if max_per_group is not None:
        shuffled = rows.iloc[np.random.default_rng(seed).permutation(len(rows))]
        rows = shuffled.groupby(["language", "emotion"]).head(max_per_group)
    return np.sort(rows.index.to_numpy())


def embed_rows(
    checkpoint: str | Path,
    cache_dir: str | Path,
    max_per_group: int | None = 100,
    splits: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Encoder embeddings of cached utterances of both languages, on CPU.

    Args:
        checkpoint: A UDAModule checkpoint written by `sed-uda fit`/`grid` (it also holds the data
            module's settings: features, normalisation, evaluation crop).
        cache_dir: The feature cache to embed (normally the one the model was trained on).
        max_per_group: At most this many utterances per (language, emotion), drawn with `seed`;
            None embeds all of them.
        splits: Splits to draw from (e.g. ["test"]); None for all.
        seed: Seed of the draw.

    Returns:
        The manifest rows embedded (index = cache row, in cache order) and their (rows, dim) embeddings.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"checkpoint {checkpoint} does not exist; train one with `sed-uda grid` or `fit`"
        )
    model = UDAModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    data = CrossLingualDataModule.load_from_checkpoint(
        checkpoint, map_location="cpu", cache_dir=str(cache_dir)
    )
    data.setup("predict")
    if data.num_channels != model.encoder.in_channels:
        raise ValueError(
            f"{cache_dir} gives {data.num_channels} input channels but {checkpoint} was trained on "
            f"{model.encoder.in_channels}; embed the cache the model was trained on"
        )
    wanted = _sample_rows(data.manifest, max_per_group, splits, seed)
    keep = torch.zeros(len(data.manifest), dtype=torch.bool)
    keep[wanted] = True
    rows, chunks = [], []
    with torch.inference_mode():
        for batch in data.predict_dataloader():
            picked = keep[batch["row"]]
            if picked.any():
                rows.append(batch["row"][picked])
                chunks.append(model.embed(batch["x"][picked], batch["lengths"][picked]).float())
    order = torch.cat(rows).argsort()
    embeddings = torch.cat(chunks)[order].numpy()
    return data.manifest.loc[wanted], embeddings


def project_2d(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) t-SNE projection of (n, dim) embeddings; perplexity 30, or less for small n."""
    n = len(embeddings)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 embeddings, got {n}; embed more utterances")
    tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(np.asarray(embeddings, dtype=np.float32))

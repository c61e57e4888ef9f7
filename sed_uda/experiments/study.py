"""`sed-uda study`: adaptation methods x trade-offs x learning rates x seeds on several corpora, in
the pooled-vector loop of `pooled_study`, with the trade-off chosen without target labels.

Per corpus and direction the table shows the no-adaptation rows (source-only, `logreg`,
`logreg_coral`), each method at the trade-off and learning rate its label-free rule picks (the
highest mean target IM over seeds) and, marked ORACLE, at the one with the best mean target-test
accuracy, and the target-supervised upper bound; then the mean over corpora. Which corpus designs
were decided on is the user's to say: pass it first, and the table names it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console

from sed_uda.experiments.pooled_study import Domains, load_domains, load_losses, train_pooled

NO_ADAPTATION = ("source_only", "logreg", "logreg_coral")
console = Console(stderr=True)


def run_study(
    corpora: Sequence[Path],
    methods: Sequence[Path],
    directions: Sequence[str] = ("en2zh", "zh2en"),
    normalization: str = "speaker",
    scales: Sequence[float] = (1.0, 3.0),
    lrs: Sequence[float] = (1e-3, 3e-3),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 10,
    runs_dir: Path = Path("runs/study"),
) -> pd.DataFrame:
    """One row per (corpus, direction, method, scale, lr, seed): target IM and target-test accuracy.

    Each (corpus, direction, method) block is kept in `runs_dir` under a name holding every setting
    and the method config's contents, so an interrupted or extended study reruns only what is new."""
    frames = []
    for corpus in corpora:
        for direction in directions:
            domains = None
            blocks = [("bounds", None), *((Path(m).stem, Path(m)) for m in methods)]
            for name, method in blocks:
                identity = [
                    str(corpus),
                    direction,
                    normalization,
                    list(scales),
                    list(lrs),
                    list(seeds),
                    epochs,
                ]
                identity.append(method.read_text() if method else "bounds and baselines")
                digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
                stored = Path(runs_dir) / f"{name}_{direction}_{normalization}_{digest}.csv"
                if not stored.is_file():
                    domains = domains or load_domains(corpus, direction, normalization)
                    rows = _block(
                        corpus, direction, normalization, domains, method, scales, lrs, seeds, epochs
                    )
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    rows.to_csv(stored.with_suffix(".tmp"), index=False)
                    stored.with_suffix(".tmp").replace(stored)
                    console.print(f"study: {corpus} {direction} {name} done")
                frames.append(pd.read_csv(stored))
    return pd.concat(frames, ignore_index=True)


def _block(
    corpus: Path,
    direction: str,
    normalization: str,
    domains: Domains,
    method: Path | None,
    scales: Sequence[float],
    lrs: Sequence[float],
    seeds: Sequence[int],
    epochs: int,
) -> pd.DataFrame:
    """The rows of one method (None: the bounds and the shallow baselines) on one corpus and direction."""
    from sed_uda.experiments.baselines import direction_baselines
    from sed_uda.features.config import FEATURE_NAMES

    base = {"corpus": str(corpus), "direction": direction}
    rows = []
    if method is None:
        source, target = direction[:2], direction[3:]
        for result in direction_baselines(corpus, source, target, normalization, FEATURE_NAMES):
            rows.append(base | _row(result["method"], 0.0, 0.0, 0, 0.0, result["target_acc"]))
        for seed in seeds:
            for name, labelled in (("source_only", "source"), ("target_supervised", "target")):
                outcome = train_pooled(domains, [], seed=seed, epochs=epochs, labelled=labelled)
                rows.append(base | _row(name, 0.0, 1e-3, seed, outcome.im, outcome.accuracy))
        return pd.DataFrame(rows)
    for scale in scales:
        for lr in lrs:
            for seed in seeds:
                outcome = train_pooled(domains, load_losses(method, scale), lr, seed, epochs)
                rows.append(base | _row(method.stem, scale, lr, seed, outcome.im, outcome.accuracy))
    return pd.DataFrame(rows)


def _row(method: str, scale: float, lr: float, seed: int, im: float, acc: float) -> dict:
    return {"method": method, "scale": scale, "lr": lr, "seed": seed, "im": im, "acc": acc}


def choices(frame: pd.DataFrame) -> pd.DataFrame:
    """Per corpus, direction and method: mean ± std accuracy over seeds at the label-free choice
    (highest mean IM) and at the oracle choice (highest mean accuracy) of trade-off and lr."""
    settings = (
        frame.groupby(["corpus", "direction", "method", "scale", "lr"])
        .agg(im=("im", "mean"), acc=("acc", "mean"), std=("acc", "std"))
        .reset_index()
    )
    out = []
    for (corpus, direction, method), group in settings.groupby(["corpus", "direction", "method"], sort=False):
        label_free = (
            group.loc[group.im.idxmax()] if method != "target_supervised" else group.loc[group.acc.idxmax()]
        )
        oracle = group.loc[group.acc.idxmax()]
        out.append(
            {
                "corpus": corpus,
                "direction": direction,
                "method": method,
                "acc": label_free.acc,
                "std": label_free["std"],
                "scale": label_free.scale,
                "lr": label_free.lr,
                "oracle_acc": oracle.acc,
                "oracle_scale": oracle.scale,
                "oracle_lr": oracle.lr,
            }
        )
    return pd.DataFrame(out)


def study_table(frame: pd.DataFrame, first_is_design: bool = True) -> str:
    """Markdown: one table per corpus and the mean over corpora, both directions side by side."""
    chosen = choices(frame)
    corpora = list(dict.fromkeys(chosen.corpus))
    parts = []
    for index, corpus in enumerate(corpora):
        role = " (designs decided here)" if first_is_design and index == 0 else " (held out)"
        parts.append(f"#### `{corpus}`{role}\n\n" + _table(chosen[chosen.corpus == corpus], per_seed=True))
    mean = chosen.groupby(["direction", "method"], sort=False)[["acc", "oracle_acc"]].mean().reset_index()
    parts.append(f"#### Mean over the {len(corpora)} corpora\n\n" + _table(mean, per_seed=False))
    return "\n\n".join(parts)


def _table(rows: pd.DataFrame, per_seed: bool) -> str:
    directions = list(dict.fromkeys(rows.direction))
    lines = [
        "| method | " + " | ".join(f"{d} acc (label-free) | {d} ORACLE choice" for d in directions) + " |",
        "|---|" + "---|---|" * len(directions),
    ]
    for method in dict.fromkeys(rows.method):
        cells = []
        for direction in directions:
            hit = rows[(rows.method == method) & (rows.direction == direction)]
            if hit.empty:
                cells += ["–", "–"]
                continue
            r = hit.iloc[0].to_dict()
            text = f"{r['acc']:.3f}" + (f" ± {r['std']:.3f}" if per_seed and pd.notna(r["std"]) else "")
            adapting = method not in NO_ADAPTATION and method != "target_supervised"
            if per_seed and adapting:
                text += f" (×{r['scale']:g}, lr {r['lr']:g})"
            oracle = f"{r['oracle_acc']:.3f}" + (
                f" (×{r['oracle_scale']:g}, lr {r['oracle_lr']:g})" if per_seed else ""
            )
            cells += [text, oracle if adapting else "–"]
        name = method + (" (upper bound)" if method == "target_supervised" else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

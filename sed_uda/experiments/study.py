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

from sed_uda.experiments import skada_baselines
from sed_uda.experiments.pooled_study import Domains, load_domains, load_losses, train_pooled

SKADA = Path("skada")
"""The block of skada's shallow baselines (`sed_uda.experiments.skada_baselines`), when installed."""
console = Console(stderr=True)


def run_study(
    corpora: Sequence[Path],
    methods: Sequence[Path],
    directions: Sequence[str] = ("en2zh", "zh2en"),
    normalization: str = "speaker",
    scales: Sequence[float] = (1.0, 3.0),
    lrs: Sequence[float] = (1e-3,),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 10,
    runs_dir: Path = Path("runs/study"),
) -> pd.DataFrame:
    """One row per (corpus, direction, method, scale, lr, seed): target IM and target-test accuracy.

    Each block (the bounds and `logreg` baselines, skada's baselines, one method at one trade-off and
    lr) is kept in `runs_dir` under a name hashing everything it depends on (for a method: its config
    file's contents too), so an interrupted, extended or narrowed study computes only what is new."""
    frames = []
    for corpus in corpora:
        for direction in directions:
            domains = None
            blocks = [("bounds", None, 0.0, 0.0)]
            blocks += [(Path(m).stem, Path(m), scale, lr) for m in methods for scale in scales for lr in lrs]
            blocks += [("skada", SKADA, 0.0, 0.0)] if skada_baselines.available() else []
            for name, method, scale, lr in blocks:
                identity = [str(corpus), direction, normalization, _identity(method)]
                if method != SKADA:
                    identity += [list(seeds), epochs] + ([scale, lr] if method else [])
                digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
                stored = Path(runs_dir) / f"{name}_{direction}_{normalization}_{digest}.csv"
                if not stored.is_file():
                    domains = domains or load_domains(corpus, direction, normalization)
                    rows = _block(corpus, direction, domains, method, scale, lr, seeds, epochs, normalization)
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    rows.to_csv(stored.with_suffix(".tmp"), index=False)
                    stored.with_suffix(".tmp").replace(stored)
                    console.print(f"study: {corpus} {direction} {name} x{scale:g} lr {lr:g} done")
                frames.append(pd.read_csv(stored))
    return pd.concat(frames, ignore_index=True)


def _identity(method: Path | None) -> str:
    """What a block's results depend on besides the corpus and settings."""
    if method is None:
        return "bounds and baselines"
    if method == SKADA:
        from importlib.metadata import version

        return f"skada {version('skada')}"
    return method.read_text()


def _block(
    corpus: Path,
    direction: str,
    domains: Domains,
    method: Path | None,
    scale: float,
    lr: float,
    seeds: Sequence[int],
    epochs: int,
    normalization: str,
) -> pd.DataFrame:
    """The rows of one block on one corpus and direction."""
    base = {"corpus": str(corpus), "direction": direction}
    if method == SKADA:
        predicted = skada_baselines.skada_predictions(
            domains.source_x.numpy(),
            domains.source_y.numpy(),
            domains.target_x.numpy(),
            domains.test_x.numpy(),
        )
        truth = domains.test_y.numpy()
        rows = [base | _row(name, 0.0, 0.0, 0, 0.0, (p == truth).mean()) for name, p in predicted.items()]
        return pd.DataFrame(rows)
    if method is None:
        from sed_uda.experiments.baselines import direction_baselines
        from sed_uda.features.frontends.librosa import BLOCK_NAMES

        source, target = direction[:2], direction[3:]
        results = direction_baselines(corpus, source, target, normalization, BLOCK_NAMES, with_skada=False)
        rows = [base | _row(r["method"], 0.0, 0.0, 0, 0.0, r["target_acc"]) for r in results]
        for seed in seeds:
            for name, labelled in (("source_only", "source"), ("target_supervised", "target")):
                outcome = train_pooled(domains, [], seed=seed, epochs=epochs, labelled=labelled)
                rows.append(base | _row(name, 0.0, 1e-3, seed, outcome.im, outcome.accuracy))
        return pd.DataFrame(rows)
    rows = []
    for seed in seeds:
        outcome = train_pooled(domains, load_losses(method, scale), lr, seed, epochs)
        rows.append(base | _row(method.stem, scale, lr, seed, outcome.im, outcome.accuracy))
    return pd.DataFrame(rows)


def _row(method: str, scale: float, lr: float, seed: int, im: float, acc: float) -> dict:
    return {"method": method, "scale": scale, "lr": lr, "seed": seed, "im": im, "acc": acc}


def choices(frame: pd.DataFrame) -> pd.DataFrame:
    """Per corpus, direction and method: mean ± std accuracy over seeds at the label-free choice
    (highest mean IM) and at the oracle choice (highest mean accuracy) of trade-off and lr, and the
    mean accuracy of the config as shipped (×1, lr 0.001)."""
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
        shipped = group[(group.scale == 1.0) & (group.lr == 1e-3)]
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
                "shipped_acc": shipped.acc.iloc[0] if len(shipped) else float("nan"),
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
    mean = _mean(chosen)
    parts.append(f"#### Mean over the {len(corpora)} corpora\n\n" + _table(mean, per_seed=False))
    heading = (
        "#### Each method (label-free choice) against the best no-adaptation row (source-only or any "
        "shallow baseline), and the share of the gap to the upper bound it closes: mean over "
    )
    parts.append(heading + f"all {len(corpora)} corpora\n\n" + margins_table(margins(mean)))
    if first_is_design and len(corpora) > 1:
        held_out = _mean(chosen[chosen.corpus != corpora[0]])
        parts.append(
            heading + f"the {len(corpora) - 1} held-out corpora\n\n" + margins_table(margins(held_out))
        )
    return "\n\n".join(parts)


def _mean(chosen: pd.DataFrame) -> pd.DataFrame:
    return (
        chosen.groupby(["direction", "method"], sort=False)[["acc", "oracle_acc", "shipped_acc"]]
        .mean()
        .reset_index()
    )


def margins(mean: pd.DataFrame) -> pd.DataFrame:
    """Per direction and adapting method (label-free choice): the best no-adaptation row, the margin
    over it, the upper bound and the gap closed, from mean accuracies over corpora."""
    rows = []
    for direction, group in mean.groupby("direction", sort=False):
        no_adaptation = group[group.method.map(_no_adaptation)]
        methods = group[~group.method.map(_no_adaptation) & (group.method != "target_supervised")]
        upper = group[group.method == "target_supervised"]
        if no_adaptation.empty or upper.empty:
            continue
        low, high = no_adaptation.loc[no_adaptation.acc.idxmax()], upper.acc.max()
        for best in methods.itertuples(index=False):
            rows.append(
                {
                    "direction": direction,
                    "method": best.method,
                    "acc": best.acc,
                    "baseline": low.method,
                    "baseline_acc": low.acc,
                    "margin": best.acc - low.acc,
                    "shipped_margin": best.shipped_acc - low.acc,
                    "upper": high,
                    "gap_closed": (best.acc - low.acc) / (high - low.acc)
                    if high != low.acc
                    else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def margins_table(frame: pd.DataFrame) -> str:
    lines = [
        "| direction | method | acc | best no-adaptation row | acc | margin (as shipped) | upper bound "
        "| gap closed (as shipped) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples(index=False):
        lines.append(
            f"| {r.direction} | {r.method} | {r.acc:.3f} | {r.baseline} | {r.baseline_acc:.3f} | "
            f"{r.margin:+.3f} ({r.shipped_margin:+.3f}) | {r.upper:.3f} | {r.gap_closed:.2f} "
            f"({r.shipped_margin / (r.upper - r.baseline_acc):.2f}) |"
        )
    return "\n".join(lines)


def _no_adaptation(method: str) -> bool:
    """Source-only and every shallow baseline (`logreg*`, skada's included)."""
    return method == "source_only" or method.startswith("logreg")


def _table(rows: pd.DataFrame, per_seed: bool) -> str:
    """Per method and direction: the label-free choice, the config as shipped and the ORACLE choice."""
    directions = list(dict.fromkeys(rows.direction))
    columns = ("acc (label-free choice)", "as shipped (×1)", "ORACLE choice")
    lines = [
        "| method | " + " | ".join(f"{d} {c}" for d in directions for c in columns) + " |",
        "|---|" + "---|" * len(columns) * len(directions),
    ]
    for method in dict.fromkeys(rows.method):
        cells = []
        for direction in directions:
            hit = rows[(rows.method == method) & (rows.direction == direction)]
            if hit.empty:
                cells += ["–"] * len(columns)
                continue
            r = hit.iloc[0].to_dict()
            text = f"{r['acc']:.3f}" + (f" ± {r['std']:.3f}" if per_seed and pd.notna(r["std"]) else "")
            if _no_adaptation(method) or method == "target_supervised":
                cells += [text, "–", "–"]
                continue
            if per_seed:
                text += f" (×{r['scale']:g}, lr {r['lr']:g})"
            oracle = f"{r['oracle_acc']:.3f}" + (
                f" (×{r['oracle_scale']:g}, lr {r['oracle_lr']:g})" if per_seed else ""
            )
            shipped = "–" if pd.isna(r["shipped_acc"]) else f"{r['shipped_acc']:.3f}"
            cells += [text, shipped, oracle]
        name = method + (" (upper bound)" if method == "target_supervised" else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

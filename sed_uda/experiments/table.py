"""Results tables from run records: methods as rows, directions as columns, mean ± std over seeds.

Every table carries the strong shallow baselines (pooled-statistics logistic regression with and
without CORAL, computed on the same cache, features and normalisation as the runs), the gap each
method closes between the best model without adaptation and the target-supervised upper bound, the
selection rules side by side, and how well each label-free rule ranks checkpoints (Spearman
correlation of its score with target test accuracy over every validated epoch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sed_uda.experiments.runner import RECORD
from sed_uda.models.selection.rules import DEFAULT_RULE, RULES, get_rule

DIRECTIONS = ("en2zh", "zh2en")
UPPER, LOWER = "target_supervised", "source_only"
BASELINES_FILE = "baselines.json"


def read_records(runs: Path) -> list[dict]:
    """Every finished run record under `runs`; a clear error when there is none."""
    records = [json.loads(p.read_text()) | {"run": str(p.parent)} for p in sorted(Path(runs).rglob(RECORD))]
    if not records:
        raise FileNotFoundError(f"no finished runs ({RECORD}) under {runs}: run `sed-uda grid` first")
    return records


def collect_records(records: list[dict]) -> pd.DataFrame:
    """One row per (run, selection rule, test metric)."""
    rows = []
    for record in records:
        for rule, selected in record["selection"].items():
            for key, value in selected["test"].items():
                direction, _, metric = key.split("/", 2)
                rows.append(
                    {
                        "method": _method(record),
                        "encoder": record["encoder"],
                        "direction": direction,
                        "seed": record["seed"],
                        "rule": rule,
                        "metric": metric,
                        "value": value,
                        "settings": record.get("settings_id", ""),
                        "run": record["run"],
                    }
                )
    return pd.DataFrame(rows)


def _method(record: dict) -> str:
    """A record's row name; the two bounds are named by what they train on, not by config name."""
    if not record.get("adapts", True):
        return UPPER if record.get("labelled_domain") == "target" else record["method"]
    return record["method"]


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1) and seed count per method, encoder, direction, rule and metric."""
    grouped = records.groupby(["method", "encoder", "direction", "rule", "metric"])["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def _index(summary: pd.DataFrame) -> dict[tuple, pd.Series]:
    return {(r.method, r.encoder, r.direction, r.rule, r.metric): r for r in summary.itertuples(index=False)}


def _text(row: object | None) -> str:
    if row is None:
        return "–"
    return f"{row.mean:.3f}" if row.n < 2 or np.isnan(row.std) else f"{row.mean:.3f} ± {row.std:.3f}"


def _rule_for(method: str, rule: str) -> str:
    """The upper bound is trained on target labels, so it is selected on them too."""
    return "target_oracle" if method == UPPER else rule


def _row_order(summary: pd.DataFrame) -> list[tuple[str, str]]:
    present = sorted(set(zip(summary.method, summary.encoder, strict=True)))
    rank = {LOWER: 0, UPPER: 3}
    return sorted(present, key=lambda r: (rank.get(r[0], 1 if r[0].startswith("logreg") else 2), r))


def main_table(summary: pd.DataFrame, rule: str) -> str:
    """Target-test accuracy (micro) and macro-F1 per direction, one row per method and encoder."""
    index = _index(summary)
    lines = [
        "| Method | Encoder | en->zh Acc | en->zh F1 | zh->en Acc | zh->en F1 |",
        "|---|---|---|---|---|---|",
    ]
    for method, encoder in _row_order(summary):
        cells = [
            _text(index.get((method, encoder, d, _rule_for(method, rule), m)))
            for d in DIRECTIONS
            for m in ("target_acc", "target_f1")
        ]
        name = method + (" (upper bound)" if method == UPPER else "")
        lines.append(f"| {name} | {encoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gap_closed(summary: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Per adapting method and direction: (acc - best no-adaptation acc) / (upper acc - best
    no-adaptation acc), on mean target accuracy; no-adaptation = source-only rows and the shallow
    baselines, upper = the best target-supervised row."""
    acc = summary[summary.metric == "target_acc"]
    rows = []
    for direction in DIRECTIONS:
        here = acc[acc.direction == direction]
        chosen = here[here.rule == here.method.map(lambda m: _rule_for(m, rule))]
        no_adaptation = chosen[chosen.method.isin([LOWER]) | chosen.method.str.startswith("logreg")]
        upper = chosen[chosen.method == UPPER]
        if no_adaptation.empty or upper.empty:
            continue
        low, high = no_adaptation["mean"].max(), upper["mean"].max()
        for r in chosen[
            ~chosen.method.isin([LOWER, UPPER]) & ~chosen.method.str.startswith("logreg")
        ].itertuples():
            gap = (r.mean - low) / (high - low) if high != low else np.nan
            rows.append(
                {
                    "method": r.method,
                    "encoder": r.encoder,
                    "direction": direction,
                    "gap": gap,
                    "acc": r.mean,
                    "best_no_adaptation": low,
                    "upper": high,
                }
            )
    return pd.DataFrame(rows)


def gap_table(gaps: pd.DataFrame) -> str:
    lines = ["| Method | Encoder | en->zh | zh->en |", "|---|---|---|---|"]
    if gaps.empty:
        return "\n".join([*lines, "| – | – | – | – |"])
    for (method, encoder), group in gaps.groupby(["method", "encoder"]):
        by_direction = dict(zip(group.direction, group.gap, strict=True))
        cells = [f"{by_direction[d]:+.2f}" if d in by_direction else "–" for d in DIRECTIONS]
        lines.append(f"| {method} | {encoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rules_table(summary: pd.DataFrame) -> str:
    """Mean target accuracy over every adapting row under each selection rule."""
    index = _index(summary)
    rows = [r for r in _row_order(summary) if r[0] not in (UPPER,) and not r[0].startswith("logreg")]
    lines = [
        "| Method | Encoder | " + " | ".join(_label(r) for r in RULES) + " |",
        "|---|---|" + "---|" * len(RULES),
    ]
    for method, encoder in rows:
        for direction in DIRECTIONS:
            cells = [index.get((method, encoder, direction, r, "target_acc")) for r in RULES]
            lines.append(
                f"| {method} | {encoder} {direction} | "
                + " | ".join("–" if c is None else f"{c.mean:.3f}" for c in cells)
                + " |"
            )
    return "\n".join(lines)


def _label(rule: str) -> str:
    return rule + (" (ORACLE)" if RULES[rule].uses_target_labels else "")


def rule_ranking(records: list[dict]) -> pd.DataFrame:
    """Per rule: Spearman correlation between its score (sign-adjusted, higher = better) and target
    test accuracy over the validated epochs of each adapting run, averaged over runs; and the mean
    accuracy lost against the oracle-best epoch (regret)."""
    rows = []
    for record in records:
        history = pd.DataFrame(record.get("history") or [])
        if not record.get("adapts") or len(history) < 3 or "target_test_acc" not in history:
            continue
        truth = history["target_test_acc"]
        for name, rule in RULES.items():
            if rule.metric not in history:
                continue
            score = history[rule.metric] * (1 if rule.mode == "max" else -1)
            chosen = truth[score.idxmax()]
            rows.append(
                {
                    "rule": name,
                    "spearman": score.rank().corr(truth.rank()),
                    "regret": truth.max() - chosen,
                }
            )
    if not rows:
        return pd.DataFrame(columns=["rule", "spearman", "regret", "runs"])
    frame = pd.DataFrame(rows)
    ranking = frame.groupby("rule").agg(
        spearman=("spearman", "mean"), regret=("regret", "mean"), runs=("regret", "count")
    )
    return ranking.reindex([r for r in RULES if r in ranking.index]).reset_index()


def ranking_table(ranking: pd.DataFrame) -> str:
    lines = [
        "| Selection rule | Spearman with target acc | Accuracy lost vs oracle epoch | Runs |",
        "|---|---|---|---|",
    ]
    for r in ranking.itertuples(index=False):
        lines.append(f"| {_label(r.rule)} | {r.spearman:+.2f} | {r.regret:.3f} | {r.runs} |")
    return "\n".join(lines)


def shallow_baselines(records: list[dict], runs: Path) -> pd.DataFrame:
    """`sed_uda.experiments.baselines` rows for the runs' input setting (cache, features,
    normalisation), computed once and kept in `<runs>/baselines.json`."""
    settings = {(r.get("cache_dir"), r.get("normalization"), tuple(r.get("features") or ())) for r in records}
    settings.discard((None, None, ()))
    if len(settings) != 1:
        return pd.DataFrame()
    cache_dir, normalization, features = settings.pop()
    if not Path(cache_dir, "meta.json").is_file():
        return pd.DataFrame()
    from sed_uda.experiments.baselines import direction_baselines

    key = json.dumps([cache_dir, Path(cache_dir, "meta.json").read_text(), normalization, list(features)])
    stored = Path(runs) / BASELINES_FILE
    kept = json.loads(stored.read_text()) if stored.is_file() else {}
    if kept.get("key") != key:
        directions = sorted({r["direction"] for r in records})
        results = [
            row
            for d in directions
            for row in direction_baselines(cache_dir, d[:2], d[3:], normalization, features)
        ]
        kept = {"key": key, "results": results}
        stored.write_text(json.dumps(kept, indent=2))
    rows = []
    for result in kept["results"]:
        for rule in RULES:
            for metric in ("target_acc", "target_f1"):
                rows.append(
                    {
                        "method": result["method"],
                        "encoder": "pooled stats",
                        "direction": result["direction"],
                        "rule": rule,
                        "metric": metric,
                        "mean": result[metric],
                        "std": np.nan,
                        "n": 1,
                    }
                )
    return pd.DataFrame(rows)


def write_tables(runs: Path, out: Path, rule: str = DEFAULT_RULE) -> str:
    """Write the Markdown report to `out` and every number to `out` with .csv; return the Markdown."""
    selected = get_rule(rule)
    records = read_records(runs)
    frame = collect_records(records)
    summary = pd.concat([summarize(frame), shallow_baselines(records, runs)], ignore_index=True)
    seeds = int(frame.groupby(["method", "encoder", "direction"])["seed"].nunique().max())
    mixed = frame.groupby(["method", "encoder", "direction"])["settings"].nunique()
    mixed = mixed[mixed > 1]
    settings = sorted({(r.get("normalization"), r.get("threads")) for r in records}, key=str)
    oracle = " — ORACLE: selected with target labels" if selected.uses_target_labels else ""
    parts = [
        f"## Target-language test results (selected by `{rule}`: {selected.description}{oracle})",
        f"Accuracy is micro (fraction correct), F1 is macro; mean ± std over up to {seeds} seed(s); "
        f"normalisation and torch threads of the runs: {', '.join(f'{n} / {t}' for n, t in settings)}. "
        "The upper bound is trained and selected on target labels; `logreg*` rows are deterministic.",
    ]
    if not mixed.empty:
        cells = ", ".join(f"{m}_{e}_{d}" for m, e, d in mixed.index)
        parts.append(f"**Warning:** runs of different settings are mixed in: {cells} (rerun `sed-uda grid`).")
    parts += [
        main_table(summary, rule),
        "### Gap closed: (acc − best no-adaptation acc) / (upper bound acc − best no-adaptation acc)",
        "No-adaptation models: source-only rows and the pooled logistic regressions; upper bound: the best "
        "target-supervised row.",
        gap_table(gap_closed(summary, rule)),
        "### Selection rules side by side (mean target test accuracy)",
        rules_table(summary),
        "### How well each rule ranks checkpoints",
        "Spearman correlation of the rule's score with target test accuracy over the validated epochs of "
        "each adapting run (mean over runs), and the accuracy lost against the best epoch.",
        ranking_table(rule_ranking(records)),
    ]
    text = "\n\n".join(parts)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    summary.to_csv(out.with_suffix(".csv"), index=False)
    return text

"""Results tables from run records: the poster's layout, mean +- std over seeds, gap closed by DANN."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sed_uda.experiments.runner import RECORD
from sed_uda.experiments.selection import RULES, get_rule

METHOD_NAMES = {"dann": "DANN", "source_only": "Source-only", "target_supervised": "Target-supervised"}
ENCODER_NAMES = {"resnet50": "ResNet-50", "cnn1d": "1D-CNN"}
DIRECTIONS = ("en2zh", "zh2en")
ROW_ORDER = [
    ("dann", "resnet50"),
    ("dann", "cnn1d"),
    ("source_only", "cnn1d"),
    ("target_supervised", "cnn1d"),
]


def collect_records(runs: Path) -> pd.DataFrame:
    """One row per (run, selection rule, test metric) from every record.json under `runs`."""
    rows = []
    for path in sorted(Path(runs).rglob(RECORD)):
        record = json.loads(path.read_text())
        for rule, selected in record["selection"].items():
            for key, value in selected["test"].items():
                direction, _, metric = key.split("/", 2)
                rows.append(
                    {
                        "method": record["method"],
                        "encoder": record["encoder"],
                        "direction": direction,
                        "seed": record["seed"],
                        "rule": rule,
                        "metric": metric,
                        "value": value,
                        "run": str(path.parent),
                    }
                )
    if not rows:
        raise FileNotFoundError(f"no finished runs ({RECORD}) under {runs}: run `sed-uda grid` first")
    return pd.DataFrame(rows)


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1) and seed count per method, encoder, direction, rule and metric."""
    grouped = records.groupby(["method", "encoder", "direction", "rule", "metric"])["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def _lookup(
    summary: pd.DataFrame, method: str, encoder: str, direction: str, rule: str, metric: str
) -> pd.Series | None:
    """The summary row of one table cell, or None when no run produced it."""
    hit = summary[
        (summary.method == method)
        & (summary.encoder == encoder)
        & (summary.direction == direction)
        & (summary.rule == rule)
        & (summary.metric == metric)
    ]
    return None if hit.empty else hit.iloc[0]


def _cell(summary: pd.DataFrame, method: str, encoder: str, direction: str, rule: str, metric: str) -> str:
    row = _lookup(summary, method, encoder, direction, rule, metric)
    if row is None:
        return "–"
    return f"{row['mean']:.3f}" if row["n"] < 2 else f"{row['mean']:.3f} ± {row['std']:.3f}"


def _rows_present(summary: pd.DataFrame) -> list[tuple[str, str]]:
    present = set(zip(summary.method, summary.encoder, strict=True))
    return [r for r in ROW_ORDER if r in present] + sorted(present - set(ROW_ORDER))


def _rule_for(method: str, rule: str) -> str:
    """The upper bound is trained on target labels, so it is selected on them too."""
    return "target_oracle" if method == "target_supervised" else rule


def main_table(summary: pd.DataFrame, rule: str) -> str:
    """The poster's table: target-test accuracy (micro) and macro-F1 per direction."""
    lines = [
        "| Model | Encoder | en->zh Acc | en->zh F1 | zh->en Acc | zh->en F1 |",
        "|---|---|---|---|---|---|",
    ]
    for method, encoder in _rows_present(summary):
        cells = [
            _cell(summary, method, encoder, d, _rule_for(method, rule), m)
            for d in DIRECTIONS
            for m in ("target_acc", "target_f1")
        ]
        name = METHOD_NAMES.get(method, method) + (" (upper bound)" if method == "target_supervised" else "")
        lines.append(f"| {name} | {ENCODER_NAMES.get(encoder, encoder)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gap_closed(summary: pd.DataFrame, rule: str, direction: str, encoder: str) -> float | None:
    """(DANN - source-only) / (target-supervised - source-only) on mean target accuracy.

    Baselines come from the same encoder when that row exists, else from the 1D-CNN rows.
    """

    def mean(method: str, enc: str, use_rule: str) -> float | None:
        row = _lookup(summary, method, enc, direction, use_rule, "target_acc")
        return None if row is None else float(row["mean"])

    dann = mean("dann", encoder, rule)
    base_encoder = encoder if mean("source_only", encoder, rule) is not None else "cnn1d"
    low = mean("source_only", base_encoder, rule)
    high = mean("target_supervised", base_encoder, "target_oracle")
    if None in (dann, low, high) or high == low:
        return None
    return (dann - low) / (high - low)


def gap_table(summary: pd.DataFrame) -> str:
    """Gap closed by DANN per encoder, direction and selection rule."""
    lines = ["| Encoder | Selection rule | en->zh | zh->en |", "|---|---|---|---|"]
    encoders = sorted(set(summary[summary.method == "dann"].encoder))
    for encoder in encoders:
        for rule in RULES:
            gaps = [gap_closed(summary, rule, d, encoder) for d in DIRECTIONS]
            text = ["–" if g is None else f"{g:+.2f}" for g in gaps]
            label = rule + (" (ORACLE)" if RULES[rule].uses_target_labels else "")
            lines.append(f"| {ENCODER_NAMES.get(encoder, encoder)} | {label} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def rules_table(summary: pd.DataFrame) -> str:
    """Target accuracy of each row under every selection rule, side by side."""
    lines = ["| Model | Encoder | Selection rule | en->zh Acc | zh->en Acc |", "|---|---|---|---|---|"]
    for method, encoder in _rows_present(summary):
        for rule in RULES:
            label = rule + (" (ORACLE)" if RULES[rule].uses_target_labels else "")
            cells = [_cell(summary, method, encoder, d, rule, "target_acc") for d in DIRECTIONS]
            lines.append(
                f"| {METHOD_NAMES.get(method, method)} | {ENCODER_NAMES.get(encoder, encoder)} | {label} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def write_tables(runs: Path, out: Path, rule: str = "source_acc") -> str:
    """Write the Markdown report to `out` and every number to `out` with .csv; return the Markdown."""
    selected = get_rule(rule)
    records = collect_records(runs)
    summary = summarize(records)
    seeds = int(records.groupby(["method", "encoder", "direction"])["seed"].nunique().max())
    oracle = " — ORACLE: selected with target labels" if selected.uses_target_labels else ""
    text = "\n\n".join(
        [
            f"## Target-language test results (selected by `{rule}`: {selected.description}{oracle})",
            f"Accuracy is micro (fraction correct), F1 is macro; mean ± std over up to {seeds} seed(s). "
            "Target-supervised is the upper bound and is always selected on target labels.",
            main_table(summary, rule),
            "### Gap closed by adaptation: (DANN − source-only) / (target-supervised − source-only)",
            gap_table(summary),
            "### Model-selection rules side by side (target test accuracy)",
            "Target-supervised trains on target labels, so its non-oracle rows select on the source "
            "language or on unlabelled target data; they are shown for completeness only.",
            rules_table(summary),
        ]
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    summary.to_csv(out.with_suffix(".csv"), index=False)
    return text

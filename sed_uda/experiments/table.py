"""Results tables from run records: methods as rows, directions as columns, mean ± std over seeds.

The table knows no method or direction names: each record says its direction and languages and its
row's role (a baseline without adaptation, an adapting method, or the target-supervised upper bound).

Every table carries the strong shallow baselines (pooled-statistics logistic regression with and
without CORAL, computed on the same cache, features and normalisation as the runs), the gap each
method closes between the best model without adaptation and the target-supervised upper bound, the
selection rules side by side, and how well each label-free rule ranks checkpoints (Spearman
correlation of its score with target test accuracy over every validated epoch).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sed_uda.experiments.runner import OUTDATED, RECORD, role
from sed_uda.models.selection.rules import DEFAULT_RULE, RULES, get_rule

UPPER, BASELINE, METHOD = "upper bound", "baseline", "method"
BASELINES_FILE = "baselines.json"


def read_records(runs: Path) -> list[dict]:
    """Every current run record under `runs` (outdated runs kept aside are left out); a clear error when
    there is none. A record may be read while a grid writes others: each is replaced whole."""
    paths = [p for p in sorted(Path(runs).rglob(RECORD)) if OUTDATED not in p.parent.name]
    records = [json.loads(p.read_text()) | {"run": str(p.parent)} for p in paths]
    if not records:
        raise FileNotFoundError(f"no finished runs ({RECORD}) under {runs}: run `sed-uda grid` first")
    return records


def row_role(record: dict) -> str:
    """The record's role; records written before roles were stored say the same in two fields."""
    return record.get("role") or role(record.get("adapts", True), record.get("labelled_domain", "source"))


def directions(records: list[dict]) -> dict[str, str]:
    """Direction -> its column title (`en->zh`), in order of first appearance in the records."""
    titles: dict[str, str] = {}
    for record in records:
        source, target = record.get("source_language"), record.get("target_language")
        titles.setdefault(
            record["direction"], f"{source}->{target}" if source and target else record["direction"]
        )
    return titles


def collect_records(records: list[dict]) -> pd.DataFrame:
    """One row per (run, selection rule, test metric), plus the rule's validation score of its pick
    (metric `val_score`). A grid cell's variant shows in the method's name: `aad@w3`."""
    rows = []
    for record in records:
        method = record["method"] + (f"@{record['variant']}" if record.get("variant") else "")
        base = {
            "role": row_role(record),
            "method": method,
            "encoder": record["encoder"],
            "seed": record["seed"],
            "settings": record.get("settings_id", ""),
            "corpus": record.get("corpus"),
            "run": record["run"],
        }
        for rule, selected in record["selection"].items():
            values = [(key.split("/", 2)[0], key.split("/", 2)[2], v) for key, v in selected["test"].items()]
            values.append((record["direction"], "val_score", selected.get("val_score", np.nan)))
            for direction, metric, value in values:
                rows.append({**base, "direction": direction, "rule": rule, "metric": metric, "value": value})
    return pd.DataFrame(rows)


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1) and seed count per row (role, method, encoder), direction, rule and metric."""
    grouped = records.groupby(["role", "method", "encoder", "direction", "rule", "metric"])["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def _index(summary: pd.DataFrame) -> dict[tuple, pd.Series]:
    return {
        (r.role, r.method, r.encoder, r.direction, r.rule, r.metric): r
        for r in summary.itertuples(index=False)
    }


def _text(row: object | None) -> str:
    if row is None:
        return "–"
    return f"{row.mean:.3f}" if row.n < 2 or np.isnan(row.std) else f"{row.mean:.3f} ± {row.std:.3f}"


def _rule_for(row_role: str, rule: str) -> str:
    """The upper bound is trained on target labels, so it is selected on them too."""
    return "target_oracle" if row_role == UPPER else rule


def _row_order(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(role, method, encoder) rows: baselines, then adapting methods, then the upper bound."""
    present = set(zip(summary.role, summary.method, summary.encoder, strict=True))
    rank = {BASELINE: 0, METHOD: 1, UPPER: 2}
    return sorted(present, key=lambda r: (rank.get(r[0], 1), r[1:]))


def main_table(summary: pd.DataFrame, rule: str, titles: dict[str, str]) -> str:
    """Target-test accuracy (micro) and macro-F1 per direction, one row per method and encoder."""
    index = _index(summary)
    lines = [
        "| Method | Encoder | "
        + " | ".join(f"{t} {m}" for t in titles.values() for m in ("Acc", "F1"))
        + " |",
        "|---|---|" + "---|" * (2 * len(titles)),
    ]
    for row_role, method, encoder in _row_order(summary):
        cells = [
            _text(index.get((row_role, method, encoder, d, _rule_for(row_role, rule), m)))
            for d in titles
            for m in ("target_acc", "target_f1")
        ]
        name = method + (" (upper bound)" if row_role == UPPER else "")
        lines.append(f"| {name} | {encoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gap_closed(summary: pd.DataFrame, rule: str, titles: dict[str, str]) -> pd.DataFrame:
    """Per adapting method and direction: (acc - best baseline acc) / (upper acc - best baseline
    acc), on mean target accuracy; baselines = rows without adaptation (trained runs and the shallow
    models), upper = the best upper-bound row."""
    acc = summary[summary.metric == "target_acc"]
    rows = []
    for direction in titles:
        here = acc[acc.direction == direction]
        chosen = here[here.rule == here.role.map(lambda r: _rule_for(r, rule))]
        no_adaptation = chosen[chosen.role == BASELINE]
        upper = chosen[chosen.role == UPPER]
        if no_adaptation.empty or upper.empty:
            continue
        low, high = no_adaptation["mean"].max(), upper["mean"].max()
        for r in chosen[chosen.role == METHOD].itertuples():
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


def gap_table(gaps: pd.DataFrame, titles: dict[str, str]) -> str:
    lines = ["| Method | Encoder | " + " | ".join(titles.values()) + " |", "|---|---|" + "---|" * len(titles)]
    if gaps.empty:
        return "\n".join([*lines, "| – | – | " + " | ".join("–" for _ in titles) + " |"])
    for (method, encoder), group in gaps.groupby(["method", "encoder"]):
        by_direction = dict(zip(group.direction, group.gap, strict=True))
        cells = [f"{by_direction[d]:+.2f}" if d in by_direction else "–" for d in titles]
        lines.append(f"| {method} | {encoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rules_table(summary: pd.DataFrame, titles: dict[str, str]) -> str:
    """Mean target accuracy of every trained row except the upper bound under each selection rule
    (`summary` of the runs only: a shallow baseline has no checkpoints to select)."""
    index = _index(summary)
    rows = [r for r in _row_order(summary) if r[0] != UPPER]
    lines = [
        "| Method | Encoder | " + " | ".join(_label(r) for r in RULES) + " |",
        "|---|---|" + "---|" * len(RULES),
    ]
    for row_role, method, encoder in rows:
        for direction, title in titles.items():
            cells = [index.get((row_role, method, encoder, direction, r, "target_acc")) for r in RULES]
            lines.append(
                f"| {method} | {encoder} {title} | "
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
        if row_role(record) != METHOD or len(history) < 3 or "target_test_acc" not in history:
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
    if ranking.empty:
        return (
            "No adapting run logged target test accuracy per epoch (it is computed only when a run's rules "
            "include `target_test_oracle`): add that rule to the grid's `rules` to rank the rules."
        )
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
    languages = {(r.get("source_language"), r.get("target_language")) for r in records} - {(None, None)}
    kept = baseline_results(runs, cache_dir, normalization, features, languages)
    if kept is None:
        return pd.DataFrame()
    rows = []
    for result in kept:
        for rule in RULES:
            for metric in ("target_acc", "target_f1"):
                rows.append(
                    {
                        "role": BASELINE,
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


def baseline_results(
    runs: Path,
    cache_dir: str,
    normalization: str,
    features: Sequence[str],
    languages: set[tuple[str, str]],
) -> list[dict] | None:
    """The baselines of (source, target) `languages` on these inputs, read from `<runs>/baselines.json`
    when it holds them, else computed and written there; None without the cache."""
    if not Path(cache_dir, "meta.json").is_file():
        return None
    from sed_uda.experiments.baselines import COMPUTATION, direction_baselines

    key = json.dumps(
        [str(cache_dir), Path(cache_dir, "meta.json").read_text(), normalization, list(features)]
        + sorted(map(list, languages))
        + [COMPUTATION]
    )
    stored = Path(runs) / BASELINES_FILE
    kept = json.loads(stored.read_text()) if stored.is_file() else {}
    if kept.get("key") != key:
        results = [
            row
            for source, target in sorted(languages)
            for row in direction_baselines(cache_dir, source, target, normalization, features)
        ]
        kept = {"key": key, "results": results}
        stored.parent.mkdir(parents=True, exist_ok=True)
        partial = stored.with_suffix(".partial")  # written whole, then renamed: never a half file
        partial.write_text(json.dumps(kept, indent=2))
        os.replace(partial, stored)
    return kept["results"]


def corpus_summaries(records: list[dict], runs: Path, rule: str) -> dict[str | None, pd.DataFrame]:
    """Per corpus of the records (None: a grid without corpora): the runs' summary over seeds, the
    variants `rule` and the oracle choose there, and the shallow baselines of that corpus (kept in
    `<runs>/<corpus>/baselines.json`)."""
    groups: dict[str | None, list[dict]] = {}
    for record in records:
        groups.setdefault(record.get("corpus"), []).append(record)
    out = {}
    for corpus, group in sorted(groups.items(), key=lambda item: str(item[0])):
        trained = summarize(collect_records(group))
        baselines = shallow_baselines(group, Path(runs) / corpus if corpus else Path(runs))
        out[corpus] = pd.concat([trained, variant_choices(trained, rule), baselines], ignore_index=True)
    return out


def variant_choices(summary: pd.DataFrame, rule: str) -> pd.DataFrame:
    """For each adapting method trained in several variants (a grid cell's `variants`, e.g. trade-off
    weights), per encoder and direction: the rows of the variant whose picks score best under `rule` on
    average over seeds (label-free unless `rule` is an oracle), named `method [HP: rule]`, and of the
    variant with the best target test accuracy, `method [HP: ORACLE]`."""
    trained = summary[(summary.role == METHOD) & summary.method.str.contains("@", regex=False)]
    sign = 1 if RULES[rule].mode == "max" else -1
    chosen = []
    for (name, _, _), group in trained.groupby(
        [trained.method.str.split("@").str[0], "encoder", "direction"]
    ):
        at_rule = group[group.rule == rule]
        score = (at_rule[at_rule.metric == "val_score"].set_index("method")["mean"] * sign).dropna()
        accuracy = at_rule[at_rule.metric == "target_acc"].set_index("method")["mean"].dropna()
        if len(score) < 2 or accuracy.empty:
            continue
        for label, pick in ((_label(rule), score.idxmax()), ("ORACLE", accuracy.idxmax())):
            chosen.append(group[group.method == pick].assign(method=f"{name} [HP: {label}]"))
    return pd.concat(chosen, ignore_index=True) if chosen else summary.iloc[0:0]


def across_corpora(summaries: dict[str | None, pd.DataFrame]) -> pd.DataFrame:
    """Each row's mean over corpora of its per-corpus mean; std and n across corpora."""
    frame = pd.concat(summaries.values(), ignore_index=True)
    grouped = frame.groupby(["role", "method", "encoder", "direction", "rule", "metric"])["mean"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def write_tables(runs: Path, out: Path, rule: str = DEFAULT_RULE) -> str:
    """Write the Markdown report to `out` and every number to `out` with .csv; return the Markdown.

    Runs made on several corpora (a grid's `corpora`) get the table of the mean over corpora first, then
    each corpus's own."""
    selected = get_rule(rule)
    records = read_records(runs)
    frame = collect_records(records)
    titles = directions(records)
    trained = summarize(frame)
    per_corpus = corpus_summaries(records, runs, rule)
    summary = per_corpus[None] if list(per_corpus) == [None] else across_corpora(per_corpus)
    seeds = int(frame.groupby(["method", "encoder", "direction"])["seed"].nunique().max())
    mixed = frame.groupby(["corpus", "method", "encoder", "direction"], dropna=False)["settings"].nunique()
    mixed = mixed[mixed > 1]
    settings = sorted({(r.get("normalization"), r.get("threads")) for r in records}, key=str)
    oracle = " — ORACLE: selected with target labels" if selected.uses_target_labels else ""
    spread = f"mean ± std over up to {seeds} seed(s)"
    if len(per_corpus) > 1:
        names = ", ".join(map(str, per_corpus))
        spread = (
            f"mean over {len(per_corpus)} corpora ({names}) of each corpus's mean over up to {seeds} "
            "seed(s), ± the std across corpora"
        )
    parts = [
        f"## Target-language test results (selected by `{rule}`: {selected.description}{oracle})",
        f"Accuracy is micro (fraction correct), F1 is macro; {spread}; "
        f"normalisation and torch threads of the runs: {', '.join(f'{n} / {t}' for n, t in settings)}. "
        "The upper bound is trained and selected on target labels; `logreg*` rows are deterministic.",
    ]
    if summary.method.str.contains(" [HP: ", regex=False).any():
        parts.append(
            "`method@name` rows are the variants of a grid cell (e.g. trade-off weights); "
            f"`method [HP: {rule}]` is, per corpus and direction, the variant whose picks score best under "
            f"`{rule}` on average over seeds, `method [HP: ORACLE]` the best on target test."
        )
    if not mixed.empty:
        cells = ", ".join(
            f"{c}/{m}_{e}_{d}" if isinstance(c, str) else f"{m}_{e}_{d}" for c, m, e, d in mixed.index
        )
        parts.append(f"**Warning:** runs of different settings are mixed in: {cells} (rerun `sed-uda grid`).")
    parts += [
        main_table(summary, rule, titles),
        "### Gap closed: (acc − best no-adaptation acc) / (upper bound acc − best no-adaptation acc)",
        "No-adaptation models: the baseline rows (trained without adaptation, and the pooled logistic "
        "regressions); upper bound: the best row trained on target labels.",
        gap_table(gap_closed(summary, rule, titles), titles),
    ]
    if len(per_corpus) > 1:
        for corpus, own in per_corpus.items():
            parts += [
                f"### Corpus {corpus}: mean ± std over seeds",
                main_table(own, rule, titles),
                gap_table(gap_closed(own, rule, titles), titles),
            ]
    parts += [
        "### Selection rules side by side (mean target test accuracy)",
        rules_table(trained, titles),
        "### How well each rule ranks checkpoints",
        "Spearman correlation of the rule's score with target test accuracy over the validated epochs of "
        "each adapting run (mean over runs), and the accuracy lost against the best epoch.",
        ranking_table(rule_ranking(records)),
    ]
    text = "\n\n".join(parts)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    frames = [own.assign(corpus=corpus) for corpus, own in per_corpus.items()]
    if len(per_corpus) > 1:
        frames.insert(0, summary.assign(corpus="mean"))
    pd.concat(frames, ignore_index=True).to_csv(out.with_suffix(".csv"), index=False)
    return text

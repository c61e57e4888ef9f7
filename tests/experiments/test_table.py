"""`sed-uda table`: the numbers it prints are the mean/std of the run records it read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sed_uda.experiments.table import rule_ranking, write_tables
from sed_uda.models.selection.rules import RULES

ACC = {  # (config name, direction) -> target accuracy per seed; every rule gets acc + rule offset
    ("dann", "en2zh"): [0.50, 0.56, 0.53],
    ("source_only", "en2zh"): [0.40, 0.42, 0.44],
    ("target_supervised", "en2zh"): [0.90, 0.92, 0.94],
    ("dann", "zh2en"): [0.30, 0.34],
    ("source_only", "zh2en"): [0.36, 0.38],
    ("target_supervised", "zh2en"): [0.80, 0.82],
}
OFFSET = {rule: 0.01 * i for i, rule in enumerate(RULES)}
BOUNDS = {"dann": (True, "source"), "source_only": (False, "source"), "target_supervised": (False, "target")}


def _history(good_rule_metric: str) -> list[dict]:
    """Five epochs where `good_rule_metric` rises with target accuracy and source_acc falls."""
    return [
        {"epoch": e, "target_test_acc": 0.5 + 0.05 * e, good_rule_metric: e, "source_acc": 1 - 0.1 * e}
        for e in range(5)
    ]


def _write_runs(root: Path) -> None:
    for (method, direction), accs in ACC.items():
        for seed, acc in enumerate(accs):
            selection = {
                rule: {
                    "uses_target_labels": RULES[rule].uses_target_labels,
                    "test": {
                        f"{direction}/test/target_acc": acc + OFFSET[rule],
                        f"{direction}/test/target_f1": acc - 0.05,
                    },
                }
                for rule in RULES
            }
            run = root / f"{method}_cnn1d_{direction}" / f"seed{seed}"
            run.mkdir(parents=True)
            adapts, labelled = BOUNDS[method]
            record = {
                "method": method,
                "encoder": "cnn1d",
                "direction": direction,
                "seed": seed,
                "adapts": adapts,
                "labelled_domain": labelled,
                "settings_id": f"{method}-{direction}",
                "history": _history("target_snd"),
            }
            (run / "record.json").write_text(json.dumps({**record, "selection": selection}))


@pytest.fixture
def report(tmp_path: Path) -> tuple[str, pd.DataFrame]:
    _write_runs(tmp_path / "runs")
    text = write_tables(tmp_path / "runs", tmp_path / "results.md", rule="source_acc")
    return text, pd.read_csv(tmp_path / "results.csv")


def test_table_reports_mean_and_std_over_seeds(report: tuple[str, pd.DataFrame]) -> None:
    text, summary = report
    accs = ACC[("dann", "en2zh")]
    row = summary.query(
        "method == 'dann' and direction == 'en2zh' and rule == 'source_acc' and metric == 'target_acc'"
    )
    assert row["mean"].item() == pytest.approx(np.mean(accs))
    assert row["std"].item() == pytest.approx(np.std(accs, ddof=1))
    assert row["n"].item() == 3
    assert f"{np.mean(accs):.3f} ± {np.std(accs, ddof=1):.3f}" in text


def test_upper_bound_row_uses_oracle_selection(report: tuple[str, pd.DataFrame]) -> None:
    text, _ = report
    oracle_mean = np.mean(ACC[("target_supervised", "en2zh")]) + OFFSET["target_oracle"]
    line = next(line for line in text.splitlines() if line.startswith("| target_supervised (upper bound)"))
    assert f"{oracle_mean:.3f}" in line


def test_gap_closed_follows_its_definition(report: tuple[str, pd.DataFrame]) -> None:
    text, _ = report
    gap_line = next(
        line for line in text.splitlines() if line.startswith("| dann | cnn1d | ") and "±" not in line
    )
    for direction in ("en2zh", "zh2en"):
        dann, low = (np.mean(ACC[(m, direction)]) + OFFSET["source_acc"] for m in ("dann", "source_only"))
        high = np.mean(ACC[("target_supervised", direction)]) + OFFSET["target_oracle"]
        assert f"{(dann - low) / (high - low):+.2f}" in gap_line


def test_rule_ranking_prefers_the_rule_that_tracks_target_accuracy(tmp_path: Path) -> None:
    _write_runs(tmp_path / "runs")
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("record.json")]
    ranking = rule_ranking(records).set_index("rule")
    assert ranking.loc["target_snd", "spearman"] == pytest.approx(1.0)
    assert ranking.loc["source_acc", "spearman"] == pytest.approx(-1.0)
    assert ranking.loc["target_snd", "regret"] == pytest.approx(0.0)
    assert ranking.loc["source_acc", "regret"] == pytest.approx(0.2)
    assert ranking.loc["target_snd", "runs"] == 5  # adapting runs only: dann, 3 + 2 seeds


def test_table_says_how_to_rank_rules_when_no_run_logged_test_accuracy(tmp_path: Path) -> None:
    _write_runs(tmp_path / "runs")
    for path in (tmp_path / "runs").rglob("record.json"):
        record = json.loads(path.read_text())
        record["history"] = [
            {k: v for k, v in row.items() if k != "target_test_acc"} for row in record["history"]
        ]
        path.write_text(json.dumps(record))
    text = write_tables(tmp_path / "runs", tmp_path / "results.md")
    assert "add that rule to the grid's `rules`" in text.split("### How well each rule ranks checkpoints")[1]


def test_table_warns_when_settings_are_mixed(tmp_path: Path) -> None:
    _write_runs(tmp_path / "runs")
    path = tmp_path / "runs" / "dann_cnn1d_en2zh" / "seed2" / "record.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"settings_id": "other"}))
    text = write_tables(tmp_path / "runs", tmp_path / "results.md")
    assert "runs of different settings are mixed in: dann_cnn1d_en2zh" in text


def test_table_without_runs_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sed-uda grid"):
        write_tables(tmp_path, tmp_path / "out.md")


def test_table_takes_directions_languages_and_roles_from_the_records(tmp_path: Path) -> None:
    """Names the table has never seen: a German -> French direction, rows called anything."""
    rows = {"plain": ("baseline", 0.40), "my_method": ("method", 0.55), "oracle_model": ("upper bound", 0.90)}
    for method, (role, acc) in rows.items():
        run = tmp_path / "runs" / method
        run.mkdir(parents=True)
        tests = {"de2fr/test/target_acc": acc, "de2fr/test/target_f1": acc}
        record = {
            "method": method,
            "encoder": "enc",
            "direction": "de2fr",
            "source_language": "de",
            "target_language": "fr",
            "role": role,
            "seed": 0,
            "selection": {rule: {"test": tests} for rule in RULES},
        }
        (run / "record.json").write_text(json.dumps(record))
    text = write_tables(tmp_path / "runs", tmp_path / "results.md", rule="target_im")
    lines = text.splitlines()
    assert "| Method | Encoder | de->fr Acc | de->fr F1 |" in lines
    body = [line.split(" | ")[0] for line in lines if line.startswith("| ") and "enc |" in line][:3]
    assert body == ["| plain", "| my_method", "| oracle_model (upper bound)"]
    assert "| my_method | enc | +0.30 |" in lines, "gap closed: (0.55 - 0.40) / (0.90 - 0.40)"


def test_variants_get_the_label_free_choice_and_the_oracle_choice_per_direction(tmp_path: Path) -> None:
    """w3 scores higher on the label-free rule but is less accurate: each choice row shows its variant."""
    runs = {
        ("w1", 0): (0.70, 0.80),
        ("w1", 1): (0.72, 0.82),
        ("w3", 0): (0.90, 0.60),
        ("w3", 1): (0.94, 0.62),
    }
    for (variant, seed), (im, acc) in runs.items():
        folder = tmp_path / f"aad@{variant}_stats_zh2en" / f"seed{seed}"
        folder.mkdir(parents=True)
        record = {
            "method": "aad",
            "variant": variant,
            "encoder": "stats",
            "direction": "zh2en",
            "source_language": "zh",
            "target_language": "en",
            "seed": seed,
            "role": "method",
            "selection": {
                "target_im": {
                    "uses_target_labels": False,
                    "val_score": im,
                    "test": {"zh2en/test/target_acc": acc, "zh2en/test/target_f1": acc},
                }
            },
        }
        (folder / "record.json").write_text(json.dumps(record))
    text = write_tables(tmp_path, tmp_path / "table.md")
    main = text.split("### Gap closed")[0].splitlines()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[2] for line in main if line.startswith("| aad")}
    assert rows["aad@w1"] == "0.810 ± 0.014" and rows["aad@w3"] == "0.610 ± 0.014"
    assert rows["aad [HP: target_im]"] == rows["aad@w3"]  # label-free: the higher IM
    assert rows["aad [HP: ORACLE]"] == rows["aad@w1"]


def test_stored_baselines_are_reused_until_their_computation_changes(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sed_uda.experiments import baselines, table

    calls: list[str] = []

    def counted(cache_dir, source, target, normalization, features):  # noqa: ANN001, ANN202
        calls.append(f"{source}2{target}")
        return [{"method": "logreg", "direction": f"{source}2{target}", "target_acc": 0.5, "target_f1": 0.5}]

    monkeypatch.setattr(baselines, "direction_baselines", counted)
    args = (tmp_path, str(tiny_cache), "speaker", ["mfcc"], {("en", "zh")})
    assert table.baseline_results(*args) == table.baseline_results(*args)
    assert calls == ["en2zh"]  # the second table read baselines.json
    monkeypatch.setattr(baselines, "COMPUTATION", baselines.COMPUTATION + 1)
    table.baseline_results(*args)
    assert calls == ["en2zh", "en2zh"]

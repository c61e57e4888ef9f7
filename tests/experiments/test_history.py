"""figures.read_metrics reads a resumed run's whole history, whichever CSV version folders it used."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sed_uda.experiments.figures import read_metrics


def write_version(run: Path, version: int, steps: list[int], value: float) -> None:
    folder = run / "csv" / f"version_{version}"
    folder.mkdir(parents=True)
    pd.DataFrame({"step": steps, "epoch": [s // 4 for s in steps], "loss": value}).to_csv(
        folder / "metrics.csv", index=False
    )


def test_a_run_resumed_into_a_new_version_reads_as_one_history(tmp_path: Path) -> None:
    write_version(tmp_path, 0, [0, 1, 2, 3, 4, 5], 1.0)  # killed in epoch 1, after its step 5 was logged
    write_version(tmp_path, 1, [4, 5, 6, 7], 2.0)  # resumed from the end of epoch 0
    history = read_metrics(tmp_path)
    assert history["step"].tolist() == list(range(8))
    assert history["loss"].tolist() == [1.0] * 4 + [2.0] * 4


def test_a_fresh_run_in_the_same_folder_replaces_the_old_one(tmp_path: Path) -> None:
    write_version(tmp_path, 0, [0, 1, 2], 1.0)
    write_version(tmp_path, 1, [0, 1], 2.0)
    assert read_metrics(tmp_path)["loss"].tolist() == [2.0, 2.0]

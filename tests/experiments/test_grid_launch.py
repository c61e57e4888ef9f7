"""`sed-uda grid --jobs N` / launchers: runs side by side in their own processes with their own thread
count, claims that keep two grids from training one run twice, and what the command says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sed_uda.cli import main
from sed_uda.errors import BadArgument
from sed_uda.experiments import grid as grid_module
from sed_uda.experiments.claims import claim, claim_path
from sed_uda.experiments.grid import Cell, GridSpec, run_grid
from sed_uda.experiments.launchers import Local, make_launcher
from tests.conftest import FAST, REPO


def _spec(tiny_cache: Path, runs_dir: Path) -> GridSpec:
    """Two cheap runs: the source-only stats encoder in both directions."""
    configs = REPO / "configs"
    return GridSpec(
        name="tiny",
        runs_dir=runs_dir,
        cells=[Cell(configs / "adaptation" / "source_only.yaml", configs / "encoder" / "stats.yaml")],
        directions={d: configs / "experiment" / f"{d}.yaml" for d in ("en2zh", "zh2en")},
        overrides=[*FAST, f"--data.cache_dir={tiny_cache}", "--trainer.max_epochs=1"],
    )


def _meet(item: str, threads: int | None, folder: str) -> dict:
    """A job that says it started, then waits (up to a minute) for the other job to start too."""
    Path(folder, f"{item}.started").touch()
    other = Path(folder, f"{'b' if item == 'a' else 'a'}.started")
    deadline = time.monotonic() + 60
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"met": other.exists(), "threads": threads}


def test_local_launcher_runs_jobs_at_the_same_time_in_their_own_processes(tmp_path: Path) -> None:
    from functools import partial

    launcher = Local(jobs=2, threads=1)
    outcomes = list(launcher.launch(partial(_meet, folder=str(tmp_path)), ["a", "b"], tmp_path / "jobs"))
    assert sorted(item for item, _, _ in outcomes) == ["a", "b"]
    assert all(error is None and result == {"met": True, "threads": 1} for _, result, error in outcomes)


def _pid_or_fail(item: str, threads: int | None) -> dict:
    if item == "boom":
        raise ValueError("this run cannot be made")
    return {"pid": os.getpid()}


def test_local_processes_run_consecutive_runs_in_turn_and_one_failing_run_spares_the_next(
    tmp_path: Path,
) -> None:
    """Imports and the cache read are paid once per process for several runs while many wait (guided
    self-scheduling: a quarter of those waiting with 2 jobs, at most `runs_per_job`), one run per process
    at the end so that no job slot idles behind a long chunk."""
    launcher = Local(jobs=2, threads=1, runs_per_job=2)
    items = ["a", "boom", "b", "c", "d", "e", "f"]
    outcomes = {
        item: (result, error) for item, result, error in launcher.launch(_pid_or_fail, items, tmp_path)
    }
    assert set(outcomes) == set(items)
    assert outcomes["boom"][0] is None and "ValueError: this run cannot be made (log: " in outcomes["boom"][1]
    pids = {item: result["pid"] for item, (result, _) in outcomes.items() if result}
    # 7 waiting -> 2 (the cap), 5 -> 2, then 1 each
    assert len({pids["a"], pids["b"], pids["d"], pids["e"], pids["f"], os.getpid()}) == 6
    assert pids["b"] == pids["c"]


def test_grid_with_jobs_records_each_runs_thread_count(tiny_cache: Path, tmp_path: Path, capsys) -> None:
    spec = _spec(tiny_cache, tmp_path / "runs")
    records = run_grid(spec, launcher=make_launcher(None, jobs=2))
    assert [r["direction"] for r in records] == ["en2zh", "zh2en"]
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert [r["threads"] for r in records] == [threads, threads]
    out = capsys.readouterr().out
    said = f"{threads} torch thread" + ("s" if threads > 1 else "")
    assert f"2 runs to do, 2 at a time, {said} each" in out
    assert len(re.findall(rf"target acc \d\.\d{{3}} \(\d+ s fit, {said}\)", out)) == 2
    capsys.readouterr()
    assert run_grid(spec, launcher=make_launcher(None, jobs=2)) == records
    assert capsys.readouterr().out.count("done already, skipped") == 2


def test_a_run_claimed_by_a_live_process_is_left_to_it(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    trained: list[Path] = []
    monkeypatch.setattr(
        grid_module, "run_experiment", lambda configs, run_dir, *a, **k: trained.append(run_dir)
    )
    spec = _spec(tiny_cache, tmp_path / "runs")
    spec.directions.pop("zh2en")
    (run,) = spec.runs()
    with claim(run.run_dir):  # as another grid process training it now
        assert run_grid(spec) == []
    assert trained == []
    assert re.search(r"being run by process \d+ on \S+ since \d\d:\d\d, skipped", capsys.readouterr().out)


def test_the_claim_of_a_dead_process_is_taken_over(tiny_cache: Path, tmp_path: Path) -> None:
    spec = _spec(tiny_cache, tmp_path / "runs")
    spec.directions.pop("zh2en")
    (run,) = spec.runs()
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "half-written.ckpt").write_text("")  # what a killed grid leaves
    claim_path(run.run_dir).write_text(json.dumps({"host": "here", "pid": 999999999, "since": 0}))
    (record,) = run_grid(spec)
    assert record["run_id"] == run.run_id and not (run.run_dir / "half-written.ckpt").exists()


def _error(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err


def test_an_experiment_config_given_to_grid_is_named_in_one_line(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    status, err = _error(["grid", "--config", "configs/experiment/en2zh.yaml"], capsys)
    assert status == 2 and "Traceback" not in err
    assert err.splitlines()[0] == (
        "sed-uda grid: error: configs/experiment/en2zh.yaml is an experiment config (for `sed-uda fit "
        "--config configs/experiment/en2zh.yaml`), not a grid config; a grid config lists cells and "
        "directions, e.g. configs/grid/demo.yaml"
    )


def test_slurm_without_sbatch_says_what_to_do(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    spec = _spec(tmp_path / "cache", tmp_path / "runs")
    with pytest.raises(BadArgument, match="needs `sbatch` on this machine's PATH"):
        list(make_launcher("slurm").launch(print, spec.runs(), tmp_path / "jobs"))


@pytest.mark.parametrize(
    ("launcher", "jobs", "message"),
    [
        (None, 0, "--jobs must be at least 1, got 0"),
        ("cloud", None, "unknown launcher 'cloud'; choose one of in-process, local, slurm"),
        ("in-process", 3, "--jobs does not apply to the InProcess launcher"),
        (
            {"class_path": "sed_uda.Nothing"},
            None,
            "launcher class_path 'sed_uda.Nothing' does not name a class",
        ),
    ],
)
def test_launcher_choices_are_checked(launcher: object, jobs: int | None, message: str) -> None:
    with pytest.raises(BadArgument, match=re.escape(message)):
        make_launcher(launcher, jobs)


def test_a_grid_config_block_chooses_the_launcher() -> None:
    slurm = make_launcher(
        {"class_path": "sed_uda.experiments.launchers.Slurm", "init_args": {"cpus_per_task": 4}}, jobs=8
    )
    assert (type(slurm).__name__, slurm.threads(), slurm.jobs) == ("Slurm", 4, 8)


def test_grid_help_names_files_that_exist(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    text = capsys.readouterr().out
    named = set(re.findall(r"configs/[\w/]+\.yaml", text))
    assert "configs/grid/methods_speaker.yaml" in named
    assert all((REPO / path).is_file() for path in named), named


def _write_grid(
    tmp_path: Path,
    tiny_cache: Path,
    *extra: str,
    directions: tuple[str, ...] = ("en2zh",),
    seeds: tuple[int, ...] = (0,),
) -> None:
    """`tmp_path/grid.yaml`: the source-only stats encoder on the tiny cache, runs in `tmp_path/runs`."""
    configs = REPO / "configs"
    grid = {
        "name": "tiny",
        "runs_dir": str(tmp_path / "runs"),
        "cells": [
            {
                "adaptation": str(configs / "adaptation/source_only.yaml"),
                "encoder": str(configs / "encoder/stats.yaml"),
            }
        ],
        "directions": {d: str(configs / f"experiment/{d}.yaml") for d in directions},
        "seeds": list(seeds),
        "overrides": [*FAST, f"--data.cache_dir={tiny_cache}", "--trainer.max_epochs=1", *extra],
    }
    (tmp_path / "grid.yaml").write_text(json.dumps(grid))


def test_grid_is_quiet_about_wandb_by_itself(tiny_cache: Path, tmp_path: Path) -> None:
    """`sed-uda grid` run directly, W&B offline (local files only) and no WANDB_SILENT set."""
    _write_grid(tmp_path, tiny_cache)
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"} | {"WANDB_MODE": "offline"}
    done = subprocess.run(
        [sys.executable, "-m", "sed_uda.cli", "grid", "--config", "grid.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "runs").rglob("offline-run-*")), "W&B did log the run"
    assert "wandb" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    assert "target acc" in done.stdout


def test_ctrl_c_in_a_grid_with_jobs_says_one_line_and_keeps_finished_runs(
    tiny_cache: Path, tmp_path: Path
) -> None:
    """Ctrl-C reaches every process of the terminal's group (the grid, the job controllers, the runs):
    the user sees the grid's one line, no controller's traceback; the same command then finishes."""
    import signal

    _write_grid(tmp_path, tiny_cache, "--trainer.logger=false", directions=("en2zh", "zh2en"), seeds=(0, 1))
    command = [sys.executable, "-m", "sed_uda.cli", "grid", "--config", "grid.yaml", "--jobs", "2"]
    grid_process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal starts it
    )
    deadline = time.monotonic() + 300
    while not list((tmp_path / "runs").rglob("record.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(grid_process.pid, signal.SIGINT)  # one job per run: the next two are still starting
    out, err = grid_process.communicate(timeout=120)
    assert grid_process.returncode == 130, out + err
    assert err.strip().splitlines() == [
        "sed-uda grid: error: interrupted (Ctrl-C); finished work is kept: "
        "run the same command again to continue"
    ]
    assert "Traceback" not in out
    kept = len(list((tmp_path / "runs").rglob("record.json")))
    assert 1 <= kept < 4
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done already, skipped") == kept
    assert len(list((tmp_path / "runs").rglob("record.json"))) == 4

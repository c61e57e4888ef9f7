"""Where a grid's runs execute: here one after another, side by side on this machine, or on SLURM.

Side by side and on SLURM both go through `submitit` (Meta's job launcher): its local executor starts
each run as its own process on this machine, its SLURM executor submits each run as a batch job, and
the grid waits on both the same way. An engine that exists and is tested keeps the home-made parts to
the one loop below (at most `jobs` runs in flight). Choose one in a grid config by class path:

    launcher: {class_path: sed_uda.experiments.launchers.Slurm, init_args: {partition: cpu, cpus_per_task: 4}}

or on the command line: `sed-uda grid --jobs 2` (local) and `--launcher slurm`.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sed_uda.errors import BadArgument

Outcome = tuple[Any, dict | None, str | None]
"""(item, what the job returned, or None and why it failed in one line)."""


class Launcher:
    """Runs `job(item, threads)` for every item; yields each outcome as its job ends.

    `threads` is the torch thread count each run gets (it is stored in the run's record).
    """

    jobs: int | None = 1

    def threads(self) -> int | None:
        return None

    def launch(self, job: Callable[..., dict], items: Sequence[Any], folder: Path) -> Iterator[Outcome]:
        raise NotImplementedError


class InProcess(Launcher):
    """One run after another in this process (the default); an error stops the grid where it happens."""

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads

    def threads(self) -> int | None:
        return self._threads

    def launch(self, job: Callable[..., dict], items: Sequence[Any], folder: Path) -> Iterator[Outcome]:
        for item in items:
            yield item, job(item, self._threads), None


class _Submitit(Launcher):
    """At most `jobs` submitit jobs in flight, each running a chunk of consecutive items one after
    another; Ctrl-C cancels the ones in flight (their claims are freed by their end; finished runs stay).

    Chunks follow guided self-scheduling (Polychronopoulos & Kuck 1987): each new job takes
    1/(2 x jobs) of the items still waiting, at most `runs_per_job`, so a process's start-up serves
    several runs while the grid is long, and the last jobs hold one run each, so no slot idles at the end
    waiting for a long chunk.
    """

    poll_seconds = 1.0
    runs_per_job = 1

    def executor(self, folder: Path):  # noqa: ANN201 - a submitit executor
        raise NotImplementedError

    def submitting(self, folder: Path) -> AbstractContextManager:
        """The context each job is submitted in (Local: its controller's output to a log)."""
        return nullcontext()

    def launch(self, job: Callable[..., dict], items: Sequence[Any], folder: Path) -> Iterator[Outcome]:
        executor = self.executor(folder)
        waiting, running = list(items), []
        try:
            while waiting or running:
                while waiting and (self.jobs is None or len(running) < self.jobs):
                    size = self.chunk_size(len(waiting))
                    chunk, waiting = waiting[:size], waiting[size:]
                    with self.submitting(folder):
                        submitted = executor.submit(run_chunk, job, chunk, self.threads())
                    running.append((chunk, submitted))
                finished = [(chunk, submitted) for chunk, submitted in running if submitted.done()]
                for chunk, submitted in finished:
                    running.remove((chunk, submitted))
                    yield from _outcomes(chunk, submitted)
                if not finished:
                    time.sleep(self.poll_seconds)
        except BaseException:
            for _, submitted in running:
                submitted.cancel(check=False)
            raise

    def chunk_size(self, waiting: int) -> int:
        """How many of the `waiting` items the next job runs (guided self-scheduling)."""
        share = math.ceil(waiting / (2 * self.jobs)) if self.jobs else 1
        return max(1, min(self.runs_per_job, share))


def run_chunk(job: Callable[..., dict], items: Sequence[Any], threads: int | None) -> list[tuple]:
    """Inside one job process: `job(item, threads)` for each item in turn, so imports and the feature
    cache's read are paid once per chunk. An item that raises is reported (its traceback goes to the
    job's log) and the next one still runs."""
    import traceback

    outcomes = []
    for item in items:
        try:
            outcomes.append((job(item, threads), None))
        except Exception as error:  # noqa: BLE001 - reported per item, the chunk goes on
            traceback.print_exc()
            outcomes.append((None, f"{type(error).__name__}: {_last_line(error)}"))
    return outcomes


def _outcomes(chunk: Sequence[Any], submitted) -> Iterator[Outcome]:  # noqa: ANN001 - a submitit Job
    """Each item's result, or its error's last line and where the job's log is."""
    error = submitted.exception()
    results = submitted.result() if error is None else [(None, _last_line(error))] * len(chunk)
    for item, (result, problem) in zip(chunk, results, strict=True):
        yield item, result, None if problem is None else f"{problem} (log: {submitted.paths.stderr})"


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


class Local(_Submitit):
    """`jobs` processes side by side on this machine, each with `threads` torch threads (default: the
    machine's cores shared out, at least 1), running up to `runs_per_job` consecutive runs (a grid lists
    a cell's seeds one after another) so that a process's imports and cache read serve several runs.
    A chunk's runs are reported when the chunk ends."""

    def __init__(
        self, jobs: int = 2, threads: int | None = None, runs_per_job: int = 6, timeout_min: int = 24 * 60
    ) -> None:
        if jobs < 1 or runs_per_job < 1:
            raise BadArgument(f"jobs and runs_per_job must be at least 1, got {jobs} and {runs_per_job}")
        self.jobs, self._threads, self.timeout_min = jobs, threads, timeout_min
        self.runs_per_job = runs_per_job

    def threads(self) -> int | None:
        return self._threads or max(1, (os.cpu_count() or 1) // self.jobs)

    def executor(self, folder: Path):  # noqa: ANN201 - a submitit executor
        import submitit

        executor = submitit.LocalExecutor(folder=folder / "%j")
        executor.update_parameters(timeout_min=self.timeout_min)
        return executor

    def submitting(self, folder: Path) -> AbstractContextManager:
        return _output_to(folder / "controllers.log")


@contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """This process's stdout and stderr (file descriptors 1, 2) go to `log` while a local job starts,
    so its controller process inherits them: a Ctrl-C, which reaches every process of the terminal's
    group, makes each controller print a KeyboardInterrupt traceback, and those belong in the log,
    not under the grid's one line. The runs' own output goes to their job logs as before."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(log, "a") as file:
            os.dup2(file.fileno(), 1)
            os.dup2(file.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


class Slurm(_Submitit):
    """Each run a SLURM batch job of `cpus_per_task` cores (its torch threads); `jobs` caps the runs
    queued at once (None: all). `slurm` passes any other sbatch setting, e.g. {account: me, qos: low}."""

    poll_seconds = 10.0  # each look asks the cluster (sacct): not every second

    def __init__(
        self,
        partition: str | None = None,
        cpus_per_task: int = 2,
        mem_gb: float | None = None,
        time_min: int = 120,
        jobs: int | None = None,
        slurm: dict[str, Any] | None = None,
    ) -> None:
        self.partition, self.cpus_per_task, self.mem_gb = partition, cpus_per_task, mem_gb
        self.time_min, self.jobs, self.slurm = time_min, jobs, slurm or {}

    def threads(self) -> int | None:
        return self.cpus_per_task

    def executor(self, folder: Path):  # noqa: ANN201 - a submitit executor
        import shutil

        import submitit

        if shutil.which("sbatch") is None:
            raise BadArgument(
                "the SLURM launcher needs `sbatch` on this machine's PATH: run the grid on a SLURM login "
                "node, or use --jobs N to run on this machine (benchmarks/slurm_local.sh starts a one-node "
                "SLURM for trying it)"
            )
        executor = submitit.SlurmExecutor(folder=folder / "%j")
        settings = {"cpus_per_task": self.cpus_per_task, "time": self.time_min, **self.slurm}
        if self.partition:
            settings["partition"] = self.partition
        if self.mem_gb:
            settings["mem"] = f"{int(self.mem_gb * 1024)}M"
        executor.update_parameters(**settings)
        return executor


ALIASES = {"in-process": InProcess, "local": Local, "slurm": Slurm}


def make_launcher(config: str | dict | None, jobs: int | None = None) -> Launcher:
    """A launcher from a name (`local`, `slurm`, `in-process`) or a {class_path, init_args} block;
    `jobs` (from `--jobs`) sets how many runs are in flight, and alone means `local` when above 1."""
    if jobs is not None and jobs < 1:
        raise BadArgument(f"--jobs must be at least 1, got {jobs}")
    if config is None:
        config = "local" if jobs and jobs > 1 else "in-process"
    if isinstance(config, str):
        if config not in ALIASES:
            raise BadArgument(f"unknown launcher {config!r}; choose one of {', '.join(ALIASES)}")
        config = {"class_path": f"{__name__}.{ALIASES[config].__name__}"}
    class_path = str(config.get("class_path", ""))
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise BadArgument(f"launcher class_path {class_path!r} does not name a class") from None
    init_args = dict(config.get("init_args") or {})
    if jobs is not None and "jobs" in _parameters(cls):
        init_args["jobs"] = jobs
    elif jobs not in (None, 1):
        raise BadArgument(f"--jobs does not apply to the {class_name} launcher (it runs one run at a time)")
    return cls(**init_args)


def _parameters(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls).parameters)

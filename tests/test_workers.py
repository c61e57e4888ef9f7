"""Worker pools of `synth` and `prepare` end with their command, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

COMMAND = """
import os, time
from sed_uda.workers import worker_pool

pool = worker_pool(2)
pids = {future.result() for future in [pool.submit(os.getpid) for _ in range(8)]}
parents = {future.result() for future in [pool.submit(os.getppid) for _ in range(8)]}  # the fork server
pool.submit(time.sleep, 600)  # a worker busy with a task, as in the middle of extraction
print(*sorted(parents - {os.getpid()}), *sorted(pids), flush=True)
time.sleep(600)
"""
WAIT_S = 60
"""Upper bound for the processes to notice; they normally exit within a second."""


def _running(pid: int) -> bool:
    """True while `pid` runs (an exited process waiting to be reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_and_fork_server_exit_when_the_command_is_killed() -> None:
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [int(pid) for pid in command.stdout.readline().split()]
    assert len(pids) >= 2 and all(map(_running, pids))
    command.send_signal(signal.SIGKILL)
    command.wait()
    deadline = time.monotonic() + WAIT_S
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in pids if _running(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "worker processes outlived their command"


def test_workers_leave_ctrl_c_to_the_command(capfd) -> None:
    """Ctrl-C reaches every process of the terminal's group; workers must not die with a traceback each."""
    from sed_uda.workers import worker_pool

    with worker_pool(2) as pool:
        pids = {future.result() for future in [pool.submit(os.getpid) for _ in range(8)]}
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        assert [future.result() for future in [pool.submit(abs, -1) for _ in range(8)]] == [1] * 8
        assert all(map(_running, pids))
    assert "KeyboardInterrupt" not in capfd.readouterr().err

"""Claim files: two grid processes on one runs_dir never run the same run at the same time.

A run is claimed by holding an exclusive `flock` on `<run folder>.claim` for as long as it trains. The
kernel drops the lock when its process ends, however it ends, so the claim of a dead process is taken
over by the next grid without anyone cleaning up. The file says who holds it (host, process id, since
when) so that a waiting user can tell; it is never deleted, because a process may be locking it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Claimed(Exception):
    """The run is being trained by another process; the message says which one."""


def claim_path(run_dir: Path) -> Path:
    return Path(run_dir).with_name(Path(run_dir).name + ".claim")


@contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """Hold the run's claim for the block; `Claimed` at once if another live process holds it."""
    path = claim_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Claimed(f"being run by {holder(run_dir)} (claim: {path})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_claimed(run_dir: Path) -> bool:
    """Whether a live process holds the run's claim now."""
    path = claim_path(run_dir)
    if not path.is_file():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def holder(run_dir: Path) -> str:
    """`process 123 on host-a since 14:02` from the claim file, as far as it can be read."""
    try:
        who = json.loads(claim_path(run_dir).read_text())
        since = time.strftime("%H:%M", time.localtime(who["since"]))
        return f"process {who['pid']} on {who['host']} since {since}"
    except (OSError, ValueError, KeyError):
        return "another process"

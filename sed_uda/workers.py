"""Worker process pools that never outlive the command that started them, and leave Ctrl-C to it.

`synth` and `prepare` render and extract in forkserver pools. A pool worker left alone would survive
`kill -9` of the command (it waits on a queue whose write end it holds itself), and on Ctrl-C every
worker would print its own KeyboardInterrupt traceback. So each worker ignores SIGINT (the command
handles it and cancels the pending work) and exits as soon as the command's process is gone.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context

PARENT_CHECK_S = 0.5
"""How often a worker checks that the command's process is still alive."""


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)  # the command is gone: nobody will read this worker's results
        except PermissionError:  # the pid was reused by another user's process: ours is gone too
            os._exit(1)


def _start_worker(parent: int, initializer: Callable[[], None] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="exit-with-parent").start()
    if initializer is not None:
        initializer()


def worker_pool(
    workers: int, initializer: Callable[[], None] | None = None, preload: list[str] | None = None, **kwargs
) -> ProcessPoolExecutor:
    """A forkserver ProcessPoolExecutor whose workers ignore Ctrl-C and exit with this process.

    forkserver, not fork: the caller may hold threads (torch, BLAS) that a forked child would inherit.
    `preload` lists modules the fork server imports once; `kwargs` go to ProcessPoolExecutor.
    """
    context = get_context("forkserver")
    if preload:
        context.set_forkserver_preload(preload)
    return ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=partial(_start_worker, os.getpid(), initializer),
        **kwargs,
    )

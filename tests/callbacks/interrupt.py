"""A callback that interrupts training at a chosen step, so resume tests do not depend on timing."""

from __future__ import annotations

import os
import signal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class InterruptAt(Callback):
    """Send this process `signal_name` once `global_step` reaches `step` (mid-epoch if step is)."""

    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step = step
        self.signal = getattr(signal, signal_name)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            if self.signal == signal.SIGINT:  # as from a terminal, even if this process inherited it ignored
                signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), self.signal)

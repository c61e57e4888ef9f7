"""Training schedules as functions of progress p = step / total_steps in [0, 1].

`ganin_lr_factor` is the annealed learning rate of Ganin et al. (2016, section 5.2.2). Schedules
depend only on the step count, so a run resumed from a checkpoint continues them exactly (the
gradient-reversal schedule lives with DANN in `sed_uda.adaptation.dann`).
"""

from __future__ import annotations

from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, SequentialLR

SchedulerName = Literal["none", "ganin", "cosine"]
SCHEDULERS: tuple[str, ...] = ("none", "ganin", "cosine")


def ganin_lr_factor(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """Learning-rate multiplier `1 / (1 + alpha * p) ** beta` (1 at the start, decaying with p)."""
    return 1.0 / (1.0 + alpha * progress) ** beta


def build_lr_scheduler(
    optimizer: Optimizer, name: SchedulerName, total_steps: int, warmup_steps: int = 0
) -> LRScheduler | None:
    """The per-step LR scheduler called `name` over `total_steps` optimiser steps (None for "none").

    "ganin" multiplies every group's lr by `ganin_lr_factor(step / total_steps)`; "cosine" anneals
    to 0 over the steps after an optional linear warm-up of `warmup_steps` (ignored by "ganin").
    """
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if name == "none":
        return None
    if total_steps < 1:
        raise ValueError(
            f"the {name!r} scheduler needs at least one training step, got total_steps={total_steps}"
        )
    if name == "ganin":
        return LambdaLR(optimizer, lambda step: ganin_lr_factor(min(step / total_steps, 1.0)))
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}")
    if warmup_steps == 0:
        return CosineAnnealingLR(optimizer, T_max=total_steps)
    warmup = LinearLR(optimizer, start_factor=1.0 / (warmup_steps + 1), total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])

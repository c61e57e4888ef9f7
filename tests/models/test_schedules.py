"""GRL-lambda and learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from sed_uda.adaptation.dann import grl_lambda
from sed_uda.models.schedules import build_lr_scheduler, ganin_lr_factor


@pytest.mark.parametrize(("lambda_max", "gamma"), [(1.0, 10.0), (0.5, 5.0), (2.0, 1.0)])
def test_grl_lambda_ramps_from_zero_to_its_end_value(lambda_max: float, gamma: float) -> None:
    values = [grl_lambda(p / 20, lambda_max, gamma) for p in range(21)]
    assert values[0] == 0.0
    assert values[-1] == pytest.approx(lambda_max * (2 / (1 + math.exp(-gamma)) - 1))
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] < lambda_max


def test_ganin_lr_factor_decays_from_one() -> None:
    values = [ganin_lr_factor(p / 10) for p in range(11)]
    assert values[0] == 1.0
    assert values[-1] == pytest.approx(1 / 11**0.75)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert ganin_lr_factor(1.0, alpha=3.0, beta=0.5) == pytest.approx(0.5)


def _optimizer() -> torch.optim.Optimizer:
    """SGD with two groups at different base learning rates (as encoder/heads are)."""
    return torch.optim.SGD([{"params": [torch.zeros(1)], "lr": 0.1}, {"params": [torch.zeros(1)], "lr": 1.0}])


def _lrs_per_step(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[list[float]]:
    lrs = []
    for _ in range(steps):
        lrs.append([group["lr"] for group in scheduler.optimizer.param_groups])
        scheduler.optimizer.step()
        scheduler.step()
    lrs.append([group["lr"] for group in scheduler.optimizer.param_groups])
    return lrs


def test_ganin_scheduler_scales_every_group_by_the_factor() -> None:
    total = 10
    lrs = _lrs_per_step(build_lr_scheduler(_optimizer(), "ganin", total), total)
    for step, (encoder_lr, heads_lr) in enumerate(lrs):
        assert heads_lr == pytest.approx(ganin_lr_factor(step / total))
        assert encoder_lr == pytest.approx(0.1 * ganin_lr_factor(step / total))


def test_cosine_scheduler_anneals_to_zero() -> None:
    lrs = [heads for _, heads in _lrs_per_step(build_lr_scheduler(_optimizer(), "cosine", 10), 10)]
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[5] == pytest.approx(0.5)
    assert lrs[10] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_cosine_warmup_rises_then_anneals() -> None:
    lrs = [
        heads
        for _, heads in _lrs_per_step(build_lr_scheduler(_optimizer(), "cosine", 12, warmup_steps=3), 12)
    ]
    assert lrs[0] == pytest.approx(0.25)
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lrs[12] == pytest.approx(0.0, abs=1e-12)


def test_none_and_bad_arguments() -> None:
    assert build_lr_scheduler(_optimizer(), "none", 10) is None
    with pytest.raises(ValueError, match="unknown scheduler 'step'"):
        build_lr_scheduler(_optimizer(), "step", 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup_steps"):
        build_lr_scheduler(_optimizer(), "cosine", 10, warmup_steps=10)
    with pytest.raises(ValueError, match="at least one training step"):
        build_lr_scheduler(_optimizer(), "ganin", 0)

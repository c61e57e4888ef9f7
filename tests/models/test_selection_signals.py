"""SND and DEV against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sed_uda.models.selection.signals import (
    DeepEmbeddedValidation,
    SoftNeighborhoodDensity,
    control_variate_risk,
)


def _entropy(*p: float) -> float:
    return -sum(q * math.log(q) for q in p)


def test_snd_of_two_agreeing_rows_and_one_apart() -> None:
    # Rows 0 and 1 predict class 0, row 2 class 1: normalised dot products 1 (0-1) and 0 (with 2).
    # Row 0's neighbours (1, 2) get softmax(1/τ, 0); so does row 1's (0, 2); row 2's (0, 1) get (0, 0).
    snd = SoftNeighborhoodDensity(temperature=1.0)
    snd.update(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    near = math.e / (math.e + 1)
    expected = (2 * _entropy(near, 1 - near) + math.log(2)) / 3
    assert float(snd.compute()) == pytest.approx(expected, abs=1e-6)


def test_snd_subsamples_evenly_beyond_max_samples() -> None:
    snd = SoftNeighborhoodDensity(temperature=1.0, max_samples=3)
    # Five rows; the evenly spaced three (0, 2, 4) are the rows of the test above.
    snd.update(torch.tensor([[1.0, 0.0], [0.3, 0.7], [1.0, 0.0], [0.6, 0.4], [0.0, 1.0]]))
    near = math.e / (math.e + 1)
    assert float(snd.compute()) == pytest.approx((2 * _entropy(near, 1 - near) + math.log(2)) / 3, abs=1e-6)


def test_control_variate_risk_by_hand() -> None:
    # w l = (0.5, 5): mean 2.75; mean w = 1.5, Var(w) = 2, Cov(w l, w) = 4.5, so η = -2.25 and
    # the risk is 2.75 - 2.25 * 1.5 + 2.25 = 1.625.
    assert control_variate_risk(np.array([0.5, 2.5]), np.array([1.0, 2.0])) == pytest.approx(1.625)
    assert control_variate_risk(np.ones(3), np.array([1.0, 2.0, 6.0])) == pytest.approx(3.0)


def test_dev_is_the_mean_source_loss_when_the_domains_look_alike() -> None:
    # Identical embeddings on both sides: the domain classifier says 1/2 everywhere, every weight is 1.
    embeddings = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    losses = torch.rand(40, generator=torch.Generator().manual_seed(1))
    dev = DeepEmbeddedValidation()
    dev.update(embeddings, losses)
    dev.update(embeddings)
    assert float(dev.compute()) == pytest.approx(float(losses.mean()), abs=1e-3)


def test_dev_of_a_diverged_model_is_nan_so_no_rule_picks_its_epoch() -> None:
    embeddings = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    embeddings[3, 1] = float("nan")
    dev = DeepEmbeddedValidation()
    dev.update(embeddings, torch.rand(40))
    dev.update(torch.randn(40, 5))
    assert math.isnan(float(dev.compute()))

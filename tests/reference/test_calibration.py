"""Calibration numbers against torchmetrics and scikit-learn (issue 38). Bin edges: safeadapt's
equal-width bins are right-closed, (k/B, (k+1)/B] (Guo et al.); torchmetrics' are left-closed;
the two agree wherever no confidence lies exactly on an edge, and a test pins the convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from safeadapt.metrics.calibration import brier, ece, fit_temperature, nll
from tests.reference.conftest import cases


@pytest.mark.parametrize("case", cases(), ids=lambda c: c[0])
def test_ece_is_torchmetrics_off_the_bin_edges(case):
    from torchmetrics.functional.classification import multiclass_calibration_error

    _, logits, labels = case
    conf = logits.softmax(1).max(1).values
    on_edge = torch.isclose(conf * 15, torch.round(conf * 15), atol=1e-9)
    logits, labels = logits[~on_edge], labels[~on_edge]
    want = multiclass_calibration_error(logits.softmax(1), labels, num_classes=logits.shape[1],
                                        n_bins=15, norm="l1")  # fmt: skip
    # torchmetrics accumulates in float32: agreement to its rounding
    assert ece(logits, labels) == pytest.approx(float(want), abs=1e-5)


def test_ece_bins_are_right_closed():
    """A confidence of exactly 0.6 (= 9/15) falls in the bin (8/15, 9/15], not (9/15, 10/15]."""
    from safeadapt.metrics.calibration import _bins

    conf = torch.tensor([0.6, 0.6 + 1e-9, 1.0, 1e-9], dtype=torch.float64)
    assert _bins(conf, 15, "uniform").tolist() == [8, 9, 14, 0]


@pytest.mark.parametrize("case", cases(), ids=lambda c: c[0])
def test_nll_and_brier_are_scikit_learns(case):
    """NLL from logits equals log_loss wherever no probability underflows (scikit-learn clips
    there, safeadapt is exact); the multi-class Brier score is the sum over classes, which is
    scikit-learn's multi-class value (twice its binary default that scores one column)."""
    from sklearn.metrics import brier_score_loss, log_loss

    _, logits, labels = case
    k = logits.shape[1]
    probs = logits.softmax(1).numpy()
    if probs.min() > 1e-12:
        assert nll(logits, labels) == pytest.approx(
            log_loss(labels.numpy(), probs, labels=list(range(k))), rel=1e-9
        )
    onehot = np.eye(k)[labels.numpy()]
    assert brier(logits, labels) == pytest.approx(((probs - onehot) ** 2).sum(1).mean(), rel=1e-9)
    if k == 2:
        binary = brier_score_loss(labels.numpy(), probs[:, 1])
        assert brier(logits, labels) == pytest.approx(2 * binary, rel=1e-9)


def test_temperature_minimises_the_nll_as_scipy_finds_it_and_is_bounded():
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(3)
    labels = torch.as_tensor(rng.integers(0, 3, 300))
    logits = torch.as_tensor(np.eye(3)[labels.numpy()] * 4 + rng.normal(0, 2, (300, 3)))
    t = fit_temperature(logits, labels)
    ref = minimize_scalar(lambda lt: nll(logits / np.exp(lt), labels), bounds=(-5, 5),
                          method="bounded").x  # fmt: skip
    assert t == pytest.approx(float(np.exp(ref)), rel=1e-3)
    # uninformative logits: the NLL keeps falling as T grows; the temperature stops at its bound
    from safeadapt.metrics.calibration import MAX_TEMPERATURE

    flat = torch.tensor([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 10, dtype=torch.float64)
    noise = torch.tensor([0, 1] * 10)
    assert fit_temperature(flat, noise) <= MAX_TEMPERATURE

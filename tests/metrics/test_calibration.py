import math

import pytest
import torch

from safeadapt.metrics.calibration import (
    brier,
    ece,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_data,
)


def _calibrated(n=20000, k=3, seed=0):
    """Labels drawn from the model's own softmax: perfectly calibrated by construction."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2
    labels = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
    return logits, labels


def test_perfectly_calibrated_model_has_ece_near_zero():
    logits, labels = _calibrated()
    assert ece(logits, labels) < 0.015
    assert expected_calibration_error(logits, labels, 15, "quantile") < 0.015


def test_overconfident_model_has_large_ece():
    logits, labels = _calibrated()
    assert ece(logits * 5, labels) > 0.1


def test_hand_computed_case():
    # two examples, both predicted with confidence p = sigmoid(2); one right, one wrong
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1])
    p = 1 / (1 + math.exp(-2))
    assert ece(logits, labels) == pytest.approx(abs(0.5 - p))
    assert nll(logits, labels) == pytest.approx(-(math.log(p) + math.log(1 - p)) / 2)
    assert brier(logits, labels) == pytest.approx(((1 - p) ** 2 * 2 + p**2 * 2) / 2)


def test_constant_predictions():
    logits = torch.zeros(10, 4)  # uniform: confidence 0.25 everywhere
    labels = torch.tensor([0] * 5 + [1] * 5)
    # argmax of ties is class 0, right half the time: |0.5 - 0.25|
    assert ece(logits, labels) == pytest.approx(0.25)
    assert nll(logits, labels) == pytest.approx(math.log(4))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_matches_torchmetrics(strategy):
    tm = pytest.importorskip("torchmetrics.functional.classification")
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3000, 5, generator=g) * 3
    labels = torch.randint(0, 5, (3000,), generator=g)
    ours = expected_calibration_error(logits, labels, 15, strategy)
    if strategy == "uniform":
        ref = tm.multiclass_calibration_error(
            logits.softmax(1), labels, num_classes=5, n_bins=15, norm="l1"
        )
        assert ours == pytest.approx(ref.item(), abs=1e-5)
    else:  # torchmetrics has no equal-mass bins; check against a direct numpy computation
        import numpy as np

        p = logits.double().softmax(1)
        conf, pred = p.max(1)
        order = np.argsort(conf.numpy(), kind="stable")
        total = 0.0
        for chunk in np.array_split(order, 15):
            total += (
                len(chunk)
                / 3000
                * abs((pred[chunk] == labels[chunk]).double().mean() - conf[chunk].mean()).item()
            )
        assert ours == pytest.approx(total, abs=1e-9)


def test_reliability_counts_sum_to_n():
    logits, labels = _calibrated(500)
    rel = reliability_data(logits, labels)
    assert sum(rel.count) == 500 and len(rel.accuracy) == 15


def test_temperature_scaling_recovers_a_known_temperature():
    logits, labels = _calibrated(20000)
    t = fit_temperature(logits * 3, labels)  # over-confident by a factor of 3
    assert t == pytest.approx(3.0, rel=0.05)
    assert ece(logits * 3 / t, labels) < ece(logits * 3, labels)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"expected logits \(N, K\)"):
        ece(torch.zeros(3), torch.zeros(3, dtype=torch.long))

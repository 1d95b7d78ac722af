"""Selective classification: the risk-coverage curve with tied confidences (issue 38 item 4)."""

from __future__ import annotations

import numpy as np
import pytest


def _aurc_by_thresholds(confidence, correct) -> float:
    """The reference: the expected selective risk at each coverage k / N when the examples of
    equal confidence enter in a random order (the errors of a tie block spread evenly), i.e.
    integrating over the distinct thresholds."""
    conf, ok = np.asarray(confidence, float), np.asarray(correct, bool)
    n, risks, errors_before, taken = len(conf), [], 0.0, 0
    for value in np.sort(np.unique(conf))[::-1]:
        block = conf == value
        size, errs = int(block.sum()), float((~ok[block]).sum())
        for j in range(1, size + 1):
            risks.append((errors_before + errs * j / size) / (taken + j))
        errors_before, taken = errors_before + errs, taken + size
    assert taken == n
    return float(np.mean(risks))


@pytest.mark.parametrize("seed", range(5))
def test_aurc_does_not_depend_on_the_order_of_tied_rows(seed):
    """Regression: the same predictions gave AURC from 0.075 to 0.259 by how the split was
    sorted, because ties were broken by input row."""
    from safeadapt.safety.selective import aurc

    rng = np.random.default_rng(seed)
    conf = np.round(rng.uniform(0.5, 1, 200), 1)  # six distinct values: heavy ties
    correct = rng.uniform(0, 1, 200) < conf
    want = _aurc_by_thresholds(conf, correct)
    for _ in range(4):
        order = rng.permutation(200)
        assert aurc(conf[order], correct[order]) == pytest.approx(want, abs=1e-12)
    # without ties it is the plain curve
    distinct = rng.permutation(200) / 200
    assert aurc(distinct, correct) == pytest.approx(_aurc_by_thresholds(distinct, correct))


def test_all_tied_confidences_give_the_error_rate_at_every_coverage():
    from safeadapt.safety.selective import aurc, risk_coverage

    correct = np.array([True] * 7 + [False] * 3)
    cov, risk = risk_coverage(np.full(10, 0.8), correct)
    assert np.allclose(risk, 0.3) and aurc(np.full(10, 0.8), correct) == pytest.approx(0.3)

"""Concept forgetting arithmetic and the effective-robustness trend."""

import numpy as np
import pytest
from scipy.stats import norm

from safeadapt.errors import InvalidConfig
from safeadapt.metrics.effective import effective_robustness, fit_trend
from safeadapt.metrics.forgetting import forgetting_report


def test_forgetting_is_after_minus_before():
    r = forgetting_report({"a": 0.9, "b": 0.8}, {"a": 0.7, "b": 0.8})
    assert r.tasks["a"].delta == pytest.approx(-0.2)
    assert r.tasks["b"].delta == 0
    assert r.mean_delta == pytest.approx(-0.1)
    with pytest.raises(InvalidConfig, match="reference tasks differ"):
        forgetting_report({"a": 1.0}, {"b": 1.0})


def test_points_on_a_probit_line_have_zero_effective_robustness():
    ids = np.array([0.6, 0.7, 0.8, 0.9])
    oods = norm.cdf(0.8 * norm.ppf(ids) - 0.3)
    trend = fit_trend(ids, oods)
    assert trend.slope == pytest.approx(0.8) and trend.intercept == pytest.approx(-0.3)
    assert effective_robustness(0.75, float(norm.cdf(0.8 * norm.ppf(0.75) - 0.3)), trend) == (
        pytest.approx(0.0, abs=1e-9)
    )
    above = float(norm.cdf(0.8 * norm.ppf(0.75) - 0.3)) + 0.05
    assert effective_robustness(0.75, above, trend) == pytest.approx(0.05)


def test_a_single_baseline_point_gives_a_unit_slope():
    trend = fit_trend([0.8], [0.6])
    assert trend.slope == 1 and trend.n_points == 1
    assert effective_robustness(0.8, 0.6, trend) == pytest.approx(0.0, abs=1e-12)

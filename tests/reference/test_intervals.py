"""Intervals and tests against statsmodels and SciPy (issue 38): Wilson, McNemar (exact), Holm,
the t-interval, the KS test, the chi-square test without Yates' correction."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (80, 100), (1, 3), (57, 60), (333, 1000)])
def test_wilson_is_statsmodels(k, n):
    from statsmodels.stats.proportion import proportion_confint

    from safeadapt.metrics.intervals import wilson_interval

    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    got = wilson_interval(k, n)
    # safeadapt widens a bound by rounding only where it would leave out the estimate (k = n)
    assert got == pytest.approx((max(lo, 0.0), min(hi, 1.0)), abs=1e-12)
    assert got[0] <= k / n <= got[1]


@pytest.mark.parametrize("seed", range(4))
def test_mcnemar_exact_is_statsmodels(seed):
    from statsmodels.stats.contingency_tables import mcnemar

    from safeadapt.metrics.intervals import mcnemar_exact

    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 1, 80) < 0.7, rng.uniform(0, 1, 80) < 0.6 + 0.05 * seed
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()),
                                                         int((~a & ~b).sum())]]  # fmt: skip
    assert mcnemar_exact(a, b).p_value == pytest.approx(mcnemar(table, exact=True).pvalue,
                                                        abs=1e-12)  # fmt: skip


def test_holm_is_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from safeadapt.metrics.intervals import holm

    p = [0.01, 0.04, 0.03, 0.2, 0.005, 0.5]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)
    # safeadapt's convention for a comparison that could not be made: adjusted to 1, counted
    assert holm([0.01, float("nan"), 0.02]) == pytest.approx([0.03, 1.0, 0.04])


def test_t_interval_is_scipys():
    from scipy import stats

    from safeadapt.metrics.intervals import t_interval

    v = [0.81, 0.78, 0.84, 0.8]
    want = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert t_interval(v) == pytest.approx(want, abs=1e-12)


def test_chi_square_of_prediction_drift_has_no_yates_correction():
    from scipy.stats import chi2_contingency

    from safeadapt.monitor.signals.stats import prediction_drift

    ref = np.repeat([0, 1], [60, 40])
    win = np.repeat([0, 1], [35, 65])
    result, _ = prediction_drift(ref, win, 2)
    table = np.array([[60, 40], [35, 65]])
    assert result.p_value == pytest.approx(chi2_contingency(table, correction=False)[1])
    assert result.p_value != pytest.approx(chi2_contingency(table, correction=True)[1])

"""Interval and paired-test code against SciPy's references."""

import numpy as np
import pytest
from scipy import stats

from safeadapt.metrics.intervals import (
    bootstrap_interval,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    percentile_interval,
    resampled_means,
    t_interval,
    verdict,
    wilson_interval,
)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (80, 100), (799, 800), (500, 500)])
def test_wilson_matches_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="'n'"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="'k'"):
        wilson_interval(11, 10)


def test_bootstrap_matches_scipy_percentile():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    ours = bootstrap_interval(np.mean, x, n_resamples=4000, seed=1)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", random_state=1)
    ci = ref.confidence_interval
    # different resampling streams: agree to Monte-Carlo error (~2 % of the width)
    width = ci.high - ci.low
    assert ours[0] == pytest.approx(ci.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(ci.high, abs=0.05 * width)
    assert bootstrap_interval(np.mean, x, seed=3) == bootstrap_interval(np.mean, x, seed=3)


def test_vectorised_resampling_draws_the_loops_examples():
    """``resampled_means`` is ``bootstrap_interval``'s loop in one product per chunk: the same
    draws for the same seed, so the same interval to rounding, for a mean and for a statistic
    of several sums (a binned ECE), across chunk boundaries."""
    from safeadapt.study.outputs import _ece, _ece_contrib

    rng = np.random.default_rng(0)
    x = rng.normal(size=3001)  # 2e6 // 3001 = 666 draws per chunk: two chunks
    stats = resampled_means(x, rng=np.random.default_rng(4))[:, 0]
    assert percentile_interval(stats) == pytest.approx(
        bootstrap_interval(np.mean, x, seed=4), abs=1e-12
    )
    probs = rng.dirichlet(np.ones(3), size=500)
    labels = rng.integers(0, 3, 500)
    means = resampled_means(_ece_contrib(probs, labels), rng=np.random.default_rng(2))
    assert percentile_interval(np.abs(means).sum(1)) == pytest.approx(
        bootstrap_interval(_ece, probs, labels, seed=2), abs=1e-12
    )
    with pytest.raises(ValueError, match="zero examples"):
        resampled_means(np.zeros((0, 2)))


def test_t_interval_matches_scipy():
    v = [0.71, 0.74, 0.69, 0.73]
    ref = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert t_interval(v) == pytest.approx(ref)
    assert t_interval([0.7]) is None


def test_mcnemar_exact_is_a_binomial_test_on_discordant_pairs():
    a = np.array([1] * 50 + [1] * 12 + [0] * 3 + [0] * 35, dtype=bool)
    b = np.array([1] * 50 + [0] * 12 + [1] * 3 + [0] * 35, dtype=bool)
    out = mcnemar_exact(a, b)
    assert (out.only_a, out.only_b) == (12, 3)
    assert out.p_value == pytest.approx(stats.binomtest(3, 15, 0.5).pvalue)
    assert out.difference == pytest.approx(0.09)
    assert mcnemar_exact(a, a).p_value == 1.0


def test_paired_bootstrap_sees_a_consistent_small_gain():
    rng = np.random.default_rng(0)
    b = rng.random(2000) < 0.7
    a = b.copy()
    a[np.flatnonzero(~b)[:80]] = True  # A fixes 80 of B's errors, breaks none
    out = paired_bootstrap(np.mean, [a], [b], seed=0)
    assert out.difference == pytest.approx(0.04)
    assert out.ci_low > 0 and out.p_value < 0.01
    same = paired_bootstrap(np.mean, [b], [b], seed=0)
    assert same.p_value == 1.0


def test_holm_by_hand_and_monotone():
    # Holm (1979): sorted p 0.01, 0.02, 0.03, 0.04 with m = 4 -> 0.04, 0.06, 0.06, 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_verdict():
    assert verdict(0.02, 0.01) == "better"
    assert verdict(-0.02, 0.01) == "worse"
    assert verdict(0.02, 0.2) == "not distinguishable"


def test_rank_auroc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    from safeadapt.metrics.detection import rank_auroc as _auroc

    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 300).round(1), rng.normal(0, 1, 200).round(1)
    ref = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[a, b])
    assert _auroc(a, b) == pytest.approx(ref)


@pytest.mark.parametrize("n", [1, 2, 7, 60, 61, 100, 997, 5000])
def test_every_interval_contains_its_estimate_at_0_of_n_and_n_of_n(n):
    """A perfectly separable task (60 / 60) gave an upper bound 0.9999999999999998 < 1.0 and a
    figure with negative error bars; every interval must contain its estimate."""
    from safeadapt.metrics.intervals import stratified_bootstrap

    for k in (0, n):
        p = k / n
        lo, hi = wilson_interval(k, n)
        assert lo <= p <= hi and 0 <= lo and hi <= 1
        correct = np.full(n, k == n, dtype=float)
        lo, hi = bootstrap_interval(np.mean, correct, n_resamples=50)
        assert lo <= correct.mean() <= hi
        lo, hi = percentile_interval(resampled_means(correct, n_resamples=50)[:, 0])
        assert lo <= correct.mean() <= hi
        both = stratified_bootstrap(
            lambda d: float(d["a"][0].mean()), {"a": [correct[None, :]]}, n_resamples=50
        )
        assert both[0] <= correct.mean() <= both[1]
        paired = paired_bootstrap(np.mean, [correct], [correct], n_resamples=50)
        assert paired.ci_low <= paired.difference <= paired.ci_high
        seeds = t_interval([p, p, p])
        assert seeds[0] <= p <= seeds[1]


def test_a_skewed_bootstrap_interval_is_widened_to_its_estimate():
    from safeadapt.metrics.intervals import contain

    assert contain(0.2, 0.4, 0.5) == (0.2, 0.5) and contain(0.2, 0.4, 0.1) == (0.1, 0.4)
    assert contain(0.2, 0.4, float("nan")) == (0.2, 0.4)
    # the maximum of a sample: every resample's maximum is <= it, the percentile end can be below
    x = np.r_[np.zeros(990), np.ones(10) * 5]
    lo, hi = bootstrap_interval(np.max, x, n_resamples=200)
    assert lo <= x.max() <= hi

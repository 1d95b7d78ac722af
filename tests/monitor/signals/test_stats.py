"""The monitor's pure signal functions, on simulated draws with a known truth."""

from __future__ import annotations

import numpy as np

from safeadapt.monitor.signals import stats as signals


def test_the_atc_interval_covers_a_windows_accuracy_where_atc_holds():
    """Scores and correctness from one fixed process (no shift: ATC's assumption holds): the
    threshold fitted on a reference of 1,000 rows, the interval around the window's ATC covers
    the window's true accuracy about 95 % of the time, at 100 rows and at 500; it always holds
    its estimate and stays in [0, 1]."""
    rng = np.random.default_rng(0)

    def draw(n):
        score = rng.normal(size=n)
        right = rng.random(n) < 1 / (1 + np.exp(-3 * score - 2))  # ~80 % right
        return score, right.astype(float)

    for n in (100, 500):
        covered, widths = 0, []
        for _ in range(400):
            ref_score, ref_right = draw(1_000)
            threshold = signals.atc_threshold(ref_score, ref_right.mean())
            slips = (ref_score > threshold) - ref_right
            score, right = draw(n)
            atc = signals.atc_estimate(score, threshold)
            low, high = signals.estimate_interval(atc, slips, n)
            assert 0 <= low <= atc <= high <= 1
            covered += low <= right.mean() <= high
            widths.append(high - low)
        assert 0.91 <= covered / 400 <= 0.99, (n, covered)
    assert np.mean(widths) < 0.1  # at 500 rows: narrower than at 100
    # an estimate at the edge: clipped, still holding it
    assert signals.estimate_interval(1.0, np.array([0.0, 1.0, -1.0, 0.0]), 20)[1] == 1.0


def test_the_label_shift_interval_is_left_out_where_its_bootstrap_cannot_say_anything():
    """Above BBSE_MAX_CLASSES classes (a reference of 1,000 rows then holds about one row per
    class) no interval is drawn -- the bootstrap's 200 solves took 20 s a window at 1,000
    classes; at 10 classes it holds its estimate."""
    rng = np.random.default_rng(0)
    for classes, expect_interval in ((10, True), (signals.BBSE_MAX_CLASSES + 1, False)):
        labels = rng.integers(0, classes, 1_000)
        pred = np.where(rng.random(1_000) < 0.8, labels, rng.integers(0, classes, 1_000))
        window = rng.integers(0, classes, 500)
        share = np.bincount(window, minlength=classes) / 500
        _, estimate = signals.label_shift(pred, labels, share, classes)
        ci = signals.label_shift_interval(pred, labels, window, classes, estimate, 0)
        if expect_interval:
            assert ci is not None and ci[0] <= estimate <= ci[1]
        else:
            assert ci is None

"""The corruption summary: mean corrupted accuracy and its drop from clean."""

import pytest

from safeadapt.metrics.corruption import corruption_summary


def test_corruption_summary_by_hand():
    s = corruption_summary(0.8, {"a": {1: 0.6, 2: 0.4}, "b": {1: 0.8, 2: 0.6}})
    assert s["mean_accuracy"] == pytest.approx(0.6)
    assert s["relative_drop"] == pytest.approx(0.25)
    assert s["mean_a"] == pytest.approx(0.5) and s["mean_b"] == pytest.approx(0.7)
    assert corruption_summary(0.5, {"a": {1: 0.5}})["relative_drop"] == 0.0

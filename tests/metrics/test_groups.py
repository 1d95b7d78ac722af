"""Group metrics through fairlearn, checked against hand-computed cases."""

import numpy as np
import pytest

from safeadapt.errors import DataError
from safeadapt.metrics.groups import GroupAccuracy, group_report


def test_per_group_worst_group_and_gap_by_hand():
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    p = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    g = np.array(["a"] * 4 + ["b"] * 4)
    r = group_report(y, p, g)
    assert r.by_group == {"a": GroupAccuracy(1.0, 4), "b": GroupAccuracy(0.5, 4)}
    assert r.worst_group == "b" and r.worst_group_accuracy == 0.5
    assert r.accuracy_gap == 0.5
    # selection rates: a 2/4, b 2/4 -> parity 0; TPR a 1, b 0.5; FPR a 0, b 0.5 -> EO 0.5
    assert r.demographic_parity_difference == pytest.approx(0.0)
    assert r.equalized_odds_difference == pytest.approx(0.5)


def test_identical_groups_have_no_gap():
    y = np.array([0, 1, 0, 1])
    r = group_report(y, y, np.array(["x", "x", "y", "y"]))
    assert r.accuracy_gap == 0 and r.equalized_odds_difference == 0


def test_multiclass_reports_the_largest_one_vs_rest_difference():
    y = np.array([0, 1, 2, 0, 1, 2])
    p = np.array([0, 1, 2, 2, 2, 2])
    g = np.array(["a"] * 3 + ["b"] * 3)
    r = group_report(y, p, g)
    # class 2 is predicted for 1/3 of a and 3/3 of b
    assert r.demographic_parity_difference_max_over_classes == pytest.approx(2 / 3)
    assert r.demographic_parity_difference is None


def test_clear_errors():
    with pytest.raises(DataError, match="same length"):
        group_report(np.array([0, 1]), np.array([0]), np.array(["a", "b"]))
    with pytest.raises(DataError, match="at least two groups"):
        group_report(np.array([0, 1]), np.array([0, 1]), np.array(["a", "a"]))


def test_cells_and_tpr_gap_by_hand():
    """Cells are group x true class; the TPR gap is between groups (binary tasks)."""
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    p = np.array([1, 0, 0, 0, 1, 1, 0, 1])
    g = np.array(["r"] * 4 + ["g"] * 4)
    r = group_report(y, p, g)
    assert {k: v.accuracy for k, v in r.by_cell.items()} == {
        "r|1": 0.5,
        "r|0": 1.0,
        "g|1": 1.0,
        "g|0": 0.5,
    }
    assert r.worst_cell_accuracy == 0.5 and r.cell_gap == 0.5
    assert r.tpr_by_group == {"g": 1.0, "r": 0.5} and r.tpr_gap == 0.5
    # a colour shortcut ("r means 1") is right on the aligned cells only
    shortcut = (g == "r").astype(int)
    s = group_report(y, shortcut, g)
    assert s.worst_cell_accuracy == 0.0 and s.cell_gap == 1.0 and s.tpr_gap == 1.0

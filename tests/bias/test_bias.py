"""Bias audit and curation: hand-checked statistics, targets reached, originals untouched."""

import json

import numpy as np
import pytest

from safeadapt.bias import audit, curate, phi
from safeadapt.data.task import Split
from safeadapt.errors import DataError, InvalidConfig
from safeadapt.results.audit import AuditReport, GroupRow


def _split(n_cells: dict, seed: int = 0) -> Split:
    """A split with the given (group, label) -> count cells; inputs are distinct texts."""
    labels, groups = [], []
    for (g, y), n in n_cells.items():
        labels += [y] * n
        groups += [g] * n
    order = np.random.default_rng(seed).permutation(len(labels))
    labels = np.asarray(labels, dtype=np.int64)[order]
    groups = np.asarray(groups, dtype=object)[order]
    return Split("train", [f"text {i}" for i in range(len(labels))], labels, groups)


BIASED = {("a", 1): 90, ("a", 0): 10, ("b", 1): 10, ("b", 0): 40}


def test_audit_by_hand():
    r = audit(_split(BIASED), label_names=("neg", "pos"))
    assert "Cramér's V" in r._repr_html_() and "strongly associated" in r._repr_html_()
    assert r.groups["a"] == GroupRow(100, 100 / 150, {"neg": 0.1, "pos": 0.9})
    assert r.p_group_given_label["pos"]["a"] == pytest.approx(0.9)
    assert r.cramers_v > 0.6 and r.mutual_information_nats > 0.1
    assert any("strongly associated" in f for f in r.flags)
    assert AuditReport.from_json(json.loads(json.dumps(r.to_json()))) == r  # what a study stores
    balanced = audit(_split({("a", 1): 25, ("a", 0): 25, ("b", 1): 25, ("b", 0): 25}))
    assert balanced.cramers_v == pytest.approx(0.0) and balanced.flags == ()
    rare = audit(_split({("a", 1): 95, ("a", 0): 95, ("b", 1): 5, ("b", 0): 5}))
    assert any("'b' is under-represented" in f for f in rare.flags)


@pytest.mark.parametrize("rho", [1.0, 0.6, 0.0, -0.5])
def test_curation_reaches_the_target_correlation(rho):
    split = _split({("a", 1): 200, ("a", 0): 200, ("b", 1): 200, ("b", 0): 200})
    before = (split.labels.copy(), split.groups.copy(), list(split.inputs))
    curated, report = curate(split, target_correlation=rho, size=200, positive_group="a", seed=1)
    assert len(curated) == 200
    assert report.correlation == pytest.approx(rho, abs=0.02)
    assert phi(curated.labels, curated.groups, "a") == report.correlation
    assert report.dropped == 800 - 200 and report.duplicated == 0
    np.testing.assert_array_equal(split.labels, before[0])  # the original is untouched
    np.testing.assert_array_equal(split.groups, before[1])
    assert list(split.inputs) == before[2]
    assert set(curated.inputs) <= set(split.inputs)


def test_curation_reaches_group_shares_and_keeps_the_label_mix():
    split = _split(BIASED)
    curated, report = curate(split, group_shares={"a": 0.5, "b": 0.5}, size=100, seed=0)
    assert report.group_shares == {"a": 0.5, "b": 0.5}
    in_a = curated.labels[curated.groups == "a"]
    assert np.mean(in_a == 1) == pytest.approx(0.9, abs=0.03)


def test_impossible_targets_are_explained():
    split = _split(BIASED)
    with pytest.raises(DataError, match="needs .* but has 10.*allow_duplicates"):
        curate(split, target_correlation=0.0, size=150, positive_group="a")
    curated, report = curate(
        split, target_correlation=0.0, size=150, positive_group="a", allow_duplicates=True
    )
    assert report.duplicated > 0 and len(curated) == 150
    with pytest.raises(InvalidConfig, match="exactly one of"):
        curate(split)
    with pytest.raises(InvalidConfig, match="sum to 1"):
        curate(split, group_shares={"a": 0.7, "b": 0.7})
    with pytest.raises(InvalidConfig, match="unknown groups"):
        curate(split, group_shares={"c": 1.0})
    with pytest.raises(DataError, match="group_column"):
        audit(Split("x", ["a", "b"], np.array([0, 1])))


def test_reweighting_matches_the_target_in_expectation():
    split = _split(BIASED)
    weights, _ = curate(split, target_correlation=0.0, positive_group="a", mode="reweight")
    assert weights.shape == (len(split),) and (weights > 0).all()
    g, y = split.groups.astype(str), split.labels
    cell = [weights[(g == gg) & (y == yy)].sum() / weights.sum() for gg in "ab" for yy in (0, 1)]
    assert cell == pytest.approx([0.25] * 4)

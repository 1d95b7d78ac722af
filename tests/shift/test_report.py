"""The shift check on real embeddings of the built-in VADER data."""

import pytest

from safeadapt.data import load_builtin_task
from safeadapt.errors import DataError
from safeadapt.shift import public, shift_figure, shift_report


@pytest.fixture(scope="module")
def vader():
    return load_builtin_task("vader-sentiment")


def test_domains_differ_and_a_random_partition_does_not(vader, minilm, feature_cache):
    report = shift_report(
        minilm,
        {"movies": vader.train, "movies-test": vader.test, "tweets": vader.ood["tweets"]},
        feature_cache,
        max_per_set=120,
        n_permutations=200,
    )
    same, other = report["comparisons"]["movies-test"], report["comparisons"]["tweets"]
    assert not same["shift_detected"] and same["mmd"]["p_value"] > 0.01
    assert other["shift_detected"] and other["classifier"]["auroc"] > 0.9
    assert len(other["typical"]["tweets"]) == 5 and isinstance(other["typical"]["tweets"][0], str)
    assert report["shift_detected"] and "collected" in report["advice"]
    assert report["probe"]["accuracy"] > report["probe"]["majority"]
    png = shift_figure(report)
    assert png[:4] == b"\x89PNG" and len(png) > 10_000
    assert "_embeddings" not in public(report)


def test_one_set_is_an_error(vader, minilm, feature_cache):
    with pytest.raises(DataError, match="at least two sets"):
        shift_report(minilm, {"a": vader.train}, feature_cache)

"""The shift check on real embeddings of the built-in VADER data."""

import json

import pytest

from safeadapt.data import load_builtin_task
from safeadapt.errors import DataError
from safeadapt.shift import ShiftReport, shift_figure, shift_report


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
    same, other = report.comparisons["movies-test"], report.comparisons["tweets"]
    assert not same.shift_detected and same.mmd.p_value > 0.01
    assert other.shift_detected and other.classifier.auroc > 0.9
    assert len(other.typical["tweets"]) == 5 and isinstance(other.typical["tweets"][0], str)
    assert report.shift_detected and "collected" in report.advice
    assert report.label_mismatch == ()  # the tweets drop is the input shift's, not named noise
    assert report.probe.accuracy > report.probe.majority
    notebook = report._repr_html_()  # renders in Jupyter: verdicts, advice, the PCA picture
    assert "tweets" in notebook and "Advice" in notebook and "data:image/png;base64" in notebook
    png = shift_figure(report)
    assert png[:4] == b"\x89PNG" and len(png) > 10_000
    # shift.json and a study's pre-flight entry: no embeddings, and read back to the same report
    stored = json.loads(json.dumps(report.to_json()))
    assert "embeddings" not in stored and ShiftReport.from_json(stored) == report.without_data()
    with pytest.raises(DataError, match="no embeddings"):
        shift_figure(ShiftReport.from_json(stored))


def test_one_set_is_an_error(vader, minilm, feature_cache):
    with pytest.raises(DataError, match="at least two sets"):
        shift_report(minilm, {"a": vader.train}, feature_cache)


# slow: 1,600 VADER embeddings at length 64; the probe check is tested on small data below
@pytest.mark.slow
def test_label_noise_is_caught_by_the_probe_not_the_input_tests(feature_cache):
    """Sentiment140-style: lexicon labels on train, human labels on test (same source)."""
    from safeadapt.backbones import load_backbone

    task = load_builtin_task("vader-autolabel")
    report = shift_report(
        load_backbone("minilm", max_length=64),
        {"auto": task.train, "human": task.test},
        feature_cache,
        max_per_set=800,
        n_permutations=200,
    )
    c = report.comparisons["human"]
    assert not c.shift_detected  # same texts' distribution: the input tests see nothing
    assert c.probe.transfer < c.probe.own - 0.05 and c.probe.p_value < 0.05
    assert report.label_mismatch == ("human",) and "labels disagree" in report.advice


def test_same_labelling_is_not_flagged_and_permuted_labels_are(vader, minilm, feature_cache):
    import numpy as np

    from safeadapt.data.task import Split

    test = vader.test
    rule = Split("rule", test.inputs, 1 - test.labels)  # the opposite labelling rule
    report = shift_report(
        minilm,
        {"movies": vader.train, "movies-test": test, "flipped": rule},
        feature_cache,
        max_per_set=300,
        n_permutations=100,
    )
    same, flipped = report.comparisons["movies-test"], report.comparisons["flipped"]
    assert same.probe.p_value > 0.05
    assert flipped.probe.transfer < 0.5 < flipped.probe.own
    assert flipped.probe.p_value < 1e-6
    assert report.label_mismatch == ("flipped",)
    assert np.array_equal(test.labels, vader.test.labels)  # inputs to the report are untouched

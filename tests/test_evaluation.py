"""The safety suite end to end on the real packaged models."""

import pytest

from safeadapt.errors import InvalidConfig
from safeadapt.evaluation import SafetyConfig, evaluate_safety
from safeadapt.protocols import make_protocol
from safeadapt.run import run_protocol

CHEAP = SafetyConfig(adv_eps=(0.0, 8 / 255), adv_steps=3, adv_max_examples=16)


def test_lp_feature_distortion_is_exactly_zero(text_task, minilm_factory, feature_cache):
    record, _ = run_protocol(
        make_protocol("lp"),
        text_task,
        minilm_factory,
        0,
        cache=feature_cache,
        safety=SafetyConfig(adversarial=False),
        show_progress=False,
    )
    dist = record.safety["distortion"]
    assert set(dist) == {"test", "ood:tweets", "ood:amazon", "ood:nyt"}
    for row in dist.values():
        assert row["l2"] == 0.0 and row["cosine"] == 0.0


def test_suite_on_a_fine_tuned_image_model(image_task, effnet_factory, feature_cache):
    task = image_task.subsample(max_train=96, max_eval=64)
    proto = make_protocol("ft", {"epochs": 1, "batch_size": 32, "max_steps": 3})
    record, result = run_protocol(
        proto, task, effnet_factory, 0, cache=feature_cache, safety=CHEAP, show_progress=False
    )
    s = record.safety
    assert set(record.metrics["test"]) == {"accuracy", "ece", "ece_adaptive", "nll", "brier"}
    assert s["temperature"] > 0 and set(s["splits_ts"]["test"]) == {
        "ece",
        "ece_adaptive",
        "nll",
        "brier",
    }
    assert set(s["detection"]) == {"ood:digits", "ood:rotated"}
    assert 0 <= s["detection"]["ood:digits"]["msp_auroc"] <= 1
    assert s["distortion"]["test"]["l2"] > 0  # FT moved the features
    assert "ood:digits" in s["distortion"] and s["distortion"]["ood:digits"]["l2_ratio_to_id"] > 0
    adv = s["adversarial"]
    assert adv["n"] == 16 and adv["accuracy"]["0.0313725"] <= adv["accuracy"]["0"]
    assert record.cost["trainable_parameters"] == result.info["trainable_parameters"]
    assert record.cost["fit"]["peak_rss_mb"] > 100 and record.cost["eval"]["seconds"] > 0
    assert sum(s["reliability"]["test"]["count"]) == 64


def test_accuracy_from_the_suite_equals_plain_evaluation(text_task, minilm_factory, feature_cache):
    from safeadapt.evaluation import evaluate

    lp = make_protocol("lp").fit(
        __import__("safeadapt.protocols", fromlist=["FitContext"]).FitContext(
            text_task, minilm_factory, 0, feature_cache, show_progress=False
        )
    )
    plain = evaluate(lp.model, text_task, cache=feature_cache, frozen_backbone=True)
    full = evaluate_safety(
        lp.model,
        text_task,
        None,
        cache=feature_cache,
        frozen_backbone=True,
        config=SafetyConfig(adversarial=False),
    )
    for split, row in plain.items():
        assert full["splits"][split]["accuracy"] == pytest.approx(row["accuracy"])
    assert "distortion" not in full  # no pretrained backbone given


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"metrics": ("acuracy",)}, "Did you mean 'accuracy'"),
        ({"adv_steps": 0}, "'adv_steps'"),
        ({"adv_method": "cw"}, "'adv_method'"),
    ],
)
def test_bad_safety_config(params, match):
    with pytest.raises(InvalidConfig, match=match):
        SafetyConfig(**params)

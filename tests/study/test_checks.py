"""CI gates: bounds on any score of the table, on the pick or a named variant, on the mean or the
pessimistic interval end; shift pre-flight; JUnit XML; the CLI's exit codes."""

import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from safeadapt.cli import app
from safeadapt.errors import InvalidConfig
from safeadapt.results import ScoreSummary, StudySummary, VariantSummary, Verdict
from safeadapt.results.preflight import Preflight
from safeadapt.results.shift import (
    ClassifierResult,
    Comparison,
    KSResult,
    MMDResult,
    ShiftReport,
)
from safeadapt.study.checks import ChecksSpec, evaluate_checks, junit_xml


def _summary(shift=None) -> StudySummary:
    def score(mean, lo, hi):
        return ScoreSummary(mean, 0.0, 1, lo, hi, "wilson")

    variants = (
        VariantSummary(
            "lp",
            "lp",
            (0,),
            {"ece": score(0.08, 0.05, 0.12), "id_accuracy": score(0.8, 0.75, 0.85)},
        ),
        VariantSummary("ft", "ft", (0,), {"ece": score(0.2, 0.15, 0.25)}),
    )
    return StudySummary(
        study="tiny", task="t", modality="text", backbone="b", label_names=("no", "yes"),
        notes=(), sizes={}, seeds=(0,), splits=("test",), selection_splits=("val",),
        variants=variants, recommendation=Verdict("lp", "id-val", {}, "", "", ""),
        preflight=Preflight() if shift is None else Preflight({"shift": _shift_report(shift)}),
    )  # fmt: skip


def _shift_report(detected: dict[str, bool]) -> ShiftReport:
    """A shift report whose comparisons found a shift where ``detected`` says."""
    mmd = MMDResult(0.01, 0.5, 1.0, 100, 0.0, 0.01, False)
    clf, ks = ClassifierResult(0.5, 0.5, 5, 0.5), KSResult(8, 0, 1.0, 0.1)
    comparisons = {k: Comparison(mmd, clf, ks, v, 0.0, {}) for k, v in detected.items()}
    return ShiftReport("train", {}, 0.05, comparisons, None, None, any(detected.values()), (), "")


def test_bounds_on_the_pick_the_mean_or_the_interval_end():
    spec = ChecksSpec.from_raw({"max_ece": 0.1, "min_id_accuracy": 0.78})
    out = evaluate_checks(_summary(), spec)
    assert out.variant == "lp" and out.passed
    strict = ChecksSpec.from_raw({"max_ece": 0.1, "min_id_accuracy": 0.78, "use": "interval"})
    rows = {r.name: r for r in evaluate_checks(_summary(), strict).checks}
    assert rows["max_ece"].value == 0.12 and not rows["max_ece"].passed
    assert rows["min_id_accuracy"].value == 0.75 and not rows["min_id_accuracy"].passed
    ft = evaluate_checks(_summary(), ChecksSpec.from_raw({"variant": "ft", "max_ece": 0.1}))
    assert not ft.passed and ft.checks[0].value == 0.2


def test_an_unmeasured_score_fails_and_says_so():
    out = evaluate_checks(_summary(), ChecksSpec.from_raw({"min_forgetting": -0.02}))
    (row,) = out.checks
    assert not out.passed and row.value is None and "not measured" in row.note


def test_shift_gate_fails_or_warns():
    shifted = {"test": False, "ood:tweets": True}
    fail = evaluate_checks(_summary(shifted), ChecksSpec.from_raw({"shift": "fail"}))
    assert not fail.passed and fail.checks[0].value == "ood:tweets"
    warn = evaluate_checks(_summary(shifted), ChecksSpec.from_raw({"shift": "warn"}))
    assert warn.passed and warn.checks[0].note == "warn only"
    calm = evaluate_checks(_summary({"test": False}), ChecksSpec(shift="fail"))
    assert calm.passed


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"max_ecee": 0.1}, "Did you mean 'max_ece'"),
        ({"below_ece": 0.1}, "write min_<score> or max_<score>"),
        ({"max_ece": "low"}, "must be a number"),
        ({"use": "median"}, "'checks.use'"),
        ({"shift": "maybe"}, "'checks.shift'"),
        ([0.1], "must be a mapping"),
    ],
)
def test_bad_checks_are_named(raw, match):
    with pytest.raises(InvalidConfig, match=match):
        ChecksSpec.from_raw(raw)
    with pytest.raises(InvalidConfig, match="no variant 'lpft'"):
        evaluate_checks(_summary(), ChecksSpec(variant="lpft"))


def test_junit_xml_has_one_case_per_check_and_the_failures():
    spec = ChecksSpec.from_raw({"max_ece": 0.1, "min_id_accuracy": 0.9})
    root = ET.fromstring(junit_xml(evaluate_checks(_summary(), spec), "tiny"))
    assert root.get("tests") == "2" and root.get("failures") == "1"
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["min_id_accuracy"]


def test_cli_run_and_check_exit_1_on_a_failed_check(tiny_study, tmp_path, feature_cache):
    runner = CliRunner()
    tiny_study.update(
        protocols={"lp": {}},
        seeds=[0],
        safety=False,
        preflight={"checks": []},
        checks={"min_id_accuracy": 1.01, "max_id_accuracy": 1.0},  # the first cannot pass
    )
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tiny_study))
    junit = tmp_path / "checks.xml"
    out = runner.invoke(app, ["run", str(path), "--no-progress", "--junit", str(junit)])
    assert out.exit_code == 1, out.output
    assert "FAIL" in out.output and ET.parse(junit).getroot().get("failures") == "1"
    assert runner.invoke(app, ["check", str(path)]).exit_code == 1
    tiny_study["checks"] = {"max_id_accuracy": 1.0}
    path.write_text(yaml.safe_dump(tiny_study))
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0  # no training: the summary
    missing = dict(tiny_study, output=str(tmp_path / "never-run"))
    path.write_text(yaml.safe_dump(missing))
    out = runner.invoke(app, ["check", str(path)])
    assert out.exit_code == 2 and "run the study first" in out.output


def test_version():
    import safeadapt

    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"safeadapt {safeadapt.__version__}"

"""The study runner on a tiny real study: runs, report, resume, and a SIGKILL mid-study."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from safeadapt.study import StudyConfig, run_study
from safeadapt.study.runner import planned_runs


def _records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/*/record.json")}


def test_study_runs_reports_and_resumes(tiny_study, feature_cache):
    config = StudyConfig.from_dict(tiny_study)
    first = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    specs = planned_runs(config)
    assert first.ran == 4 and first.skipped == 0
    assert sorted(_records(config.output_dir)) == sorted(s.run_id for s in specs)
    summary = first.summary
    assert [v.variant for v in summary.variants] == ["lp", "ft"]
    lp = summary.variants[0].scores
    assert lp["id_accuracy"].n == 2 and lp["forgetting"].mean == 0.0
    assert summary.recommendation.variant in {"lp", "ft"}
    assert summary.recommendation.variant in summary.recommendation.pareto_front
    html = first.report_path.read_text()
    assert "Recommended:" in html and html.count('<img class="plot"') >= 6
    pre = summary.preflight
    assert set(pre.shift.comparisons) == {"test", "ood:digits", "ood:rotated"}
    assert set(pre.audit.groups) == {"thin", "thick"}
    assert 'id="fig-shift"' in html and "Pre-flight checks" in html
    # labelled comparisons carry the probe transfer check; typical examples are listed
    assert pre.shift.comparisons["test"].probe is not None
    assert "probe: transfer / own" in html and "Most typical examples" in html
    assert (config.output_dir / "preflight.json").is_file()
    assert "http://" not in html and "https://" not in html  # self-contained, opens offline
    csv = (config.output_dir / "results.csv").read_text().splitlines()
    # 4 runs x (test + 2 OOD reported, val + 2 OOD-val for selection)
    assert csv[0].startswith("run_id,variant,protocol,seed") and len(csv) == 1 + 4 * 6
    assert "accuracy_ci_low" in csv[0] and ",selection," in "\n".join(csv)

    again = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    assert again.ran == 0 and again.skipped == 4
    assert [r.metrics for r in again.runs] == [r.metrics for r in first.runs]


def test_a_corrupt_record_is_redone(tiny_study, feature_cache):
    tiny_study["protocols"] = {"lp": {}}
    tiny_study["seeds"] = [0]
    tiny_study["safety"] = False
    config = StudyConfig.from_dict(tiny_study)
    first = run_study(
        config, cache=feature_cache, show_progress=False, log=lambda m: None, report=False
    )
    record = next(config.output_dir.glob("runs/*/record.json"))
    record.write_text('{"metrics": ')  # a torn write from some other tool
    again = run_study(
        config, cache=feature_cache, show_progress=False, log=lambda m: None, report=False
    )
    assert again.ran == 1 and again.runs[0].metrics == first.runs[0].metrics
    assert len(list(record.parent.glob("record.json.corrupt-*"))) == 1  # kept for a look


def test_killed_study_resumes_with_every_run_once(tiny_study, tmp_path):
    tiny_study["protocols"] = {"lp": {}, "ft": tiny_study["protocols"]["ft"]}
    tiny_study["seeds"] = [0, 1, 2]
    tiny_study["safety"] = False
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tiny_study, sort_keys=False))
    out = Path(tiny_study["output"])
    env = {**os.environ, "SAFEADAPT_HOME": str(tmp_path / "home")}
    env.pop("PYTEST_CURRENT_TEST", None)
    cmd = [sys.executable, "-m", "safeadapt.cli", "run", str(path), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not _records(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    before = _records(out)
    assert 1 <= len(before) < 6

    os.environ["SAFEADAPT_HOME"] = env["SAFEADAPT_HOME"]
    try:
        config = StudyConfig.from_dict(tiny_study)
        result = run_study(config, show_progress=False, log=lambda m: None, report=False)
    finally:
        del os.environ["SAFEADAPT_HOME"]
    after = _records(out)
    assert sorted(after) == sorted(s.run_id for s in planned_runs(config))
    assert result.skipped == len(before) and result.ran == 6 - len(before)
    for run_id, rec in before.items():
        assert after[run_id]["metrics"] == rec["metrics"]
    assert not list(out.glob("runs/*/.*.tmp"))  # nothing half-written left visible as a record


def test_quick_mode_estimates_the_full_study(tiny_study, feature_cache):
    tiny_study["protocols"] = {"lp": {}}
    tiny_study["task"]["max_train"] = 400
    tiny_study["safety"] = False
    config = StudyConfig.from_dict(tiny_study)
    result = run_study(
        config, quick=True, cache=feature_cache, show_progress=False, log=lambda m: None
    )
    assert result.output_dir == config.output_dir / "quick"
    assert len(result.runs) == 1  # one seed
    est = result.estimate
    assert est.train_ratio == pytest.approx(400 / 200) and est.runs == 2
    assert est.two_sizes and (config.output_dir / "quick-1of2" / "summary.json").is_file()
    assert 0 <= est.fixed_seconds < est.full_seconds


def test_quick_mode_on_data_no_larger_than_its_sample_runs_the_study_once(
    tiny_study, feature_cache
):
    """60 training and 40 evaluation examples fit in the quick sample (200 / 100): a quick
    study and its half-size twin would cost more than the study itself, so the study runs."""
    tiny_study["protocols"] = {"lp": {}}
    tiny_study["safety"] = False
    config = StudyConfig.from_dict(tiny_study)
    said = []
    result = run_study(config, quick=True, cache=feature_cache, show_progress=False,
                       log=said.append)  # fmt: skip
    assert result.output_dir == config.output_dir
    assert len(result.runs) == len(config.seeds) == 2 and result.ran == 2
    assert result.estimate.ran_in_full
    assert not (config.output_dir / "quick").exists()
    assert not (config.output_dir / "quick-1of2").exists()
    assert any("no larger than the quick sample (train 60" in m for m in said)


def test_the_estimate_separates_fixed_from_per_example_costs():
    from safeadapt.study.estimate import fit_line

    assert fit_line(200, 12.0, 100, 7.0) == pytest.approx((2.0, 0.05))  # 2 s + 0.05 s / example
    assert fit_line(200, 12.0, 100, 12.5) == pytest.approx((12.0, 0.0))  # noise: no negative slope
    assert fit_line(200, 12.0, 100, 3.0) == pytest.approx((0.0, 0.06))  # nor a negative fixed cost
    assert fit_line(200, 12.0, 200, 12.0) == pytest.approx((0.0, 0.06))  # one size: proportional


def test_a_safety_family_on_a_capped_sample_stops_growing_at_its_cap():
    from safeadapt.results import RunRecord
    from safeadapt.study.estimate import cost_parts

    record = RunRecord(
        protocol="lp", seed=0, metrics={}, selection={}, fit_seconds=10.0, eval_seconds=6.0,
        config={}, safety={"family_seconds": {"adversarial": 4.0, "calibration": 1.0}},
    )  # fmt: skip
    caps = {"adversarial": 200, "calibration": None}
    assert cost_parts(record, (200, 300, 100), caps) == {
        "fit": (200, 10.0),
        "eval": (300, 1.0),  # the evaluation's rest: 6 s minus the families' 5 s
        "family:adversarial": (100, 4.0),
        "family:calibration": (300, 1.0),
    }
    at_full = cost_parts(record, (800, 1200, 400), caps)
    assert at_full["family:adversarial"][0] == 200 and at_full["family:calibration"][0] == 1200

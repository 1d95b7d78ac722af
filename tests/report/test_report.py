"""The HTML report: self-contained, figures present, table with the best in bold; and a real
headless Chromium rendering it (skipped with the install command where Chromium is absent)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from safeadapt.study import StudyConfig, run_study


@pytest.fixture(scope="module")
def study_result(tmp_path_factory, feature_cache):
    from tests.study.conftest import TINY_STUDY

    raw = {**TINY_STUDY, "output": str(tmp_path_factory.mktemp("report") / "out")}
    raw["seeds"] = [0]
    wise = {"epochs": 1, "max_steps": 2, "batch_size": 16, "alphas": [0.0, 0.5, 1.0]}
    raw["protocols"] = {**raw["protocols"], "wise-ft": wise}
    metrics = ["accuracy", "ece", "ece_adaptive", "nll", "brier", "macro_f1", "recall"]
    raw["safety"] = {**raw["safety"], "metrics": metrics}
    config = StudyConfig.from_dict(raw)
    return run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)


def test_every_figure_of_a_safety_study_is_drawn(study_result):
    from safeadapt.report.plots import FIGURES

    drawn = {k for k, (_, fn) in FIGURES.items() if fn(study_result.runs, study_result.summary)}
    assert drawn == set(FIGURES)
    html = study_result.report_path.read_text()
    for key in FIGURES:
        assert f'id="fig-{key}"' in html


def test_table_marks_the_best_and_the_recommendation(study_result):
    html = study_result.report_path.read_text()
    assert "<b>" in html and "Pareto front" in html
    rec = study_result.summary.recommendation
    assert f"Recommended: {rec.variant}" in html
    assert "embedding-space" not in html  # an image study: pixel-space attack
    assert "pixel [0,1]" in html


def test_the_report_shows_what_each_knob_did(study_result):
    from safeadapt.report.html import _knob_notes
    from safeadapt.results.fit_info import FitInfo

    html = study_result.report_path.read_text()
    assert "What each knob did" in html and "WiSE-FT alpha" in html
    notes = _knob_notes(
        FitInfo.from_json(
            {
                "regularizers": [
                    {
                        "name": "ldifs",
                        "weight": 10.0,
                        "penalty_to_loss": 0.46,
                        "grad_norm_ratio": 0.8,
                    }
                ],
                "head_effect": {
                    "method": "udp",
                    "C": 0.001,
                    "term_to_loss": 1.1,
                    "val_disagreement_with_lp": 0.023,
                    "weight_norm_standardised": 0.52,
                    "lp_weight_norm_standardised": 0.39,
                },
                "best_epoch": 0,
            }
        )  # fmt: skip
    )
    assert notes[0] == "ldifs (weight 10): penalty / task loss 0.46, gradient-norm ratio 0.8"
    assert "2.3% of val predictions differ from LP" in notes[1] and "term / loss 1.1" in notes[1]
    assert "start (epoch 0) was kept" in notes[2]


def test_safety_families_carry_intervals_from_per_example_outputs(study_result):
    """Distortion, forgetting and effective robustness get intervals like the accuracies; LP's
    forgetting is exactly 0 with a zero-width interval (same features, same probe)."""
    for v in study_result.summary.variants:
        for key in ("distortion_id", "forgetting", "effective_robustness"):
            score = v.scores[key]
            assert score.ci_low <= score.mean + 1e-9 <= score.ci_high + 2e-9, (v, key)
        if v.protocol == "lp":
            assert (v.scores["forgetting"].ci_low, v.scores["forgetting"].ci_high) == (0.0, 0.0)


def test_registered_families_reach_the_record_table_csv_and_figures(study_result):
    """A family registers once; the record, the report's columns, results.csv and the figures
    pick it up without family-specific code anywhere else."""
    import pandas as pd

    from safeadapt.safety import FAMILIES, score_columns

    html = study_result.report_path.read_text()
    csv = pd.read_csv(study_result.report_path.parent / "results.csv")
    for r in study_result.runs:
        assert set(FAMILIES.names()) <= set(r.safety)
        assert all(n == 1 for n in r.safety["backbone_passes"].values())
    measured = {k for v in study_result.summary.variants for k in v.scores}
    for key, label, _, _ in score_columns():
        if key in measured:
            assert label in html
            assert key in csv.columns
    assert {key for key, *_ in score_columns()} - measured <= {"tpr_gap"}  # binary tasks only
    for name in FAMILIES.names():
        assert f'id="fig-family_{name}"' in html


def test_figures_skip_what_was_not_measured(study_result):
    from dataclasses import replace

    from safeadapt.report.plots import FIGURES

    bare = [replace(r, safety={}) for r in study_result.runs]
    drawn = {k for k, (_, fn) in FIGURES.items() if fn(bare, study_result.summary)}
    assert drawn == {"cost", "wise_curve"}  # the last one reads the fit's info


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed: `apt-get install chromium` (make setup does as root)",
)
def test_report_renders_in_headless_chromium(study_result, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    url = study_result.report_path.resolve().as_uri()
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    total = int(dom.split('data-plots-total="')[1].split('"')[0])
    visible = int(dom.split('data-plots-visible="')[1].split('"')[0])
    assert total >= 6 and visible == total  # every figure decoded and laid out with a size
    shot = Path("artifacts") / "report-screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1280,2400", f"--screenshot={shot.resolve()}", url],
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2400)
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not a blank page


def test_a_study_result_renders_in_a_notebook(study_result):
    notebook = study_result._repr_html_()
    pick = study_result.summary.recommendation.variant
    assert f"Recommended: {pick}" in notebook and "<table>" in notebook
    assert "report.html" in notebook


def test_run_scores_are_the_builtin_ones_per_ood_split_and_the_families(study_result):
    """``checks:`` may bound the names BUILTIN_SCORES lists: run_scores must return exactly
    them besides ``accuracy:ood:<split>`` and the registered families' scores."""
    from safeadapt.safety import run_scores as family_scores
    from safeadapt.study.variants import BUILTIN_SCORES, run_scores

    for r in study_result.runs:
        keys = set(run_scores(r)) - set(family_scores(r.safety))
        assert {k for k in keys if not k.startswith("accuracy:ood:")} == set(BUILTIN_SCORES)


def test_a_failing_figure_becomes_a_note_not_a_crash(study_result, monkeypatch):
    """No figure may take the report down: its place says which family failed."""
    from safeadapt.report import plots
    from safeadapt.report.html import render_report

    def broken(runs, summary):
        raise ValueError("'xerr' must not contain negative values")

    key = next(k for k in plots.FIGURES if k.startswith("family_"))
    caption = plots.FIGURES[key][0]
    monkeypatch.setitem(plots.FIGURES, key, (caption, broken))
    html = render_report(study_result.summary, study_result.runs)
    family = key.removeprefix("family_")
    assert f"This figure ({family}) could not be drawn (ValueError" in html
    assert "Recommended:" in html


def test_runs_and_splits_tables_hold_the_results_table_without_repeating(study_result):
    """runs.csv: a row per run; splits.csv: a row per run and split, with the metrics the study
    asked for (macro-F1, recall per class name); results.csv is their join on run_id."""
    import pandas as pd

    folder = study_result.report_path.parent
    runs = pd.read_csv(folder / "runs.csv")
    splits = pd.read_csv(folder / "splits.csv")
    results = pd.read_csv(folder / "results.csv")
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in study_result.runs)
    assert "split" not in runs.columns and "fit_seconds" not in splits.columns
    assert {"macro_f1", "accuracy_ci_low", "role"} <= set(splits.columns)
    assert any(c.startswith("recall:") for c in splits.columns)
    assert len(splits) == len(results)
    joined = splits.merge(runs, on="run_id")[list(results.columns)]
    pd.testing.assert_frame_equal(joined, results)
    record = study_result.runs[0]
    row = splits[(splits["run_id"] == record.run_id) & (splits["split"] == "test")]
    assert row["macro_f1"].item() == record.metrics["test"].values["macro_f1"]

import json

import pytest
from typer.testing import CliRunner

from safeadapt.cli import app

runner = CliRunner()


def test_list_comes_from_the_registries():
    out = runner.invoke(app, ["list"])
    assert out.exit_code == 0
    assert "protocols: ft, l2-sp, ldifs, lp, lp-ft, lp-soup" in out.output


def test_quick_text_demo_end_to_end(tmp_path, monkeypatch):
    from safeadapt.data import assets
    from safeadapt.paths import home

    real = assets.vader_dir()  # the data stay where setup put them; features go to a fresh home
    monkeypatch.setattr(assets, "vader_dir", lambda: real)
    monkeypatch.setenv("SAFEADAPT_HOME", str(tmp_path / "home"))
    args = [
        "demo",
        "--quick",
        "--max-train",
        "64",
        "--max-eval",
        "48",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--no-safety",
        "--protocol",
        "lp",
        "--protocol",
        "lp-ft",
    ]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "ID test" in out.output and "OOD tweets" in out.output
    assert "recommended:" in out.output
    summary = json.loads((tmp_path / "demo-text" / "summary.json").read_text())
    assert [v["variant"] for v in summary["variants"]] == ["lp", "lp-ft"]
    assert summary["sizes"]["train"] == 64 and summary["sizes"]["test"] == 48
    assert any("sampled" in n for n in summary["notes"])
    assert (tmp_path / "demo-text" / "report.html").is_file()
    assert (home() / "features").is_dir()
    again = runner.invoke(app, args)  # a rerun resumes: nothing is recomputed
    assert again.exit_code == 0 and "0 runs now, 2 reused" in again.output


def test_bad_modality_is_one_line():
    out = runner.invoke(app, ["demo", "--modality", "audio"])
    assert out.exit_code == 2
    assert "'modality' must be 'text' or 'vision'" in out.output


@pytest.mark.parametrize("option", ["--max-train", "--max-eval"])
def test_a_zero_cap_is_refused_not_ignored(option, tmp_path):
    out = runner.invoke(app, ["demo", "--quick", option, "0", "--out", str(tmp_path)])
    assert out.exit_code == 2 and "must be an integer >= 2" in out.output
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_init_then_validate(tmp_path):
    path = tmp_path / "study.yaml"
    out = runner.invoke(app, ["init", str(path)])
    assert out.exit_code == 0 and path.is_file()
    assert runner.invoke(app, ["init", str(path)]).exit_code == 2  # never overwrites silently
    out = runner.invoke(app, ["validate", str(path), "--no-data"])
    assert out.exit_code == 0, out.output
    assert "is valid: 8 runs" in out.output


def test_validate_loads_the_data_and_names_the_bad_column(tmp_path):
    import yaml

    (tmp_path / "train.csv").write_text("review,label\ngood,pos\nbad,neg\nfine,pos\nawful,neg\n")
    (tmp_path / "test.csv").write_text("review,label\nnice,pos\nugly,neg\n")
    (tmp_path / "prod.csv").write_text("review,label\nmeh,neutral\n")
    study = {
        "name": "files",
        "task": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
        "protocols": {"lp": {}},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study))
    out = runner.invoke(app, ["validate", str(path)])
    assert out.exit_code == 2 and "'text'" in out.output and "review" in out.output
    study["task"]["text_column"] = "review"
    study["task"]["ood"] = {"prod": str(tmp_path / "prod.csv")}
    path.write_text(yaml.safe_dump(study))
    out = runner.invoke(app, ["validate", str(path)])
    assert out.exit_code == 2 and "neutral" in out.output


def test_run_with_a_typo_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ntask: {builtin: mnist}\nprotocols: {lp-fft: {}}\n")
    out = runner.invoke(app, ["run", str(path)])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and "Did you mean 'lp-ft'" in out.output


def test_shift_audit_curate_commands(tmp_path):
    import json

    out = runner.invoke(
        app,
        [
            "shift", "--task", "vader-sentiment", "--sets", "train,ood:tweets",
            "--max-per-set", "60", "--permutations", "100", "--out", str(tmp_path / "shift"),
            "--no-progress",
        ],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "train vs ood:tweets" in out.output and "advice:" in out.output
    assert "probe fitted on train, scored on ood:tweets" in out.output
    assert json.loads((tmp_path / "shift" / "shift.json").read_text())["reference"] == "train"
    assert (tmp_path / "shift" / "shift.png").stat().st_size > 10_000
    detected = "shift DETECTED" in out.output
    gate = runner.invoke(
        app,
        [
            "shift", "--task", "vader-sentiment", "--sets", "train,ood:tweets",
            "--max-per-set", "60", "--permutations", "100", "--out", str(tmp_path / "shift"),
            "--no-progress", "--fail-on-shift",
        ],
    )  # fmt: skip
    assert gate.exit_code == (1 if detected else 0), gate.output  # same seeds: same verdict

    out = runner.invoke(app, ["audit", "--task", "vader-sentiment"])
    assert out.exit_code == 0 and '"short"' in out.output

    csv = tmp_path / "curated.csv"
    out = runner.invoke(
        app,
        ["curate", "--task", "vader-sentiment", "--correlation", "0.8", "--size", "400",
         "--positive-group", "long", "--out", str(csv)],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = csv.read_text().splitlines()
    assert lines[0] == "text,label,group" and len(lines) >= 401
    bad = runner.invoke(app, ["shift", "--task", "vader-sentiment", "--sets", "train,nope"])
    assert bad.exit_code == 2 and "unknown set 'nope'" in bad.output


def test_console_tables_follow_the_report_columns_and_survive_missing_scores():
    """The console's score tables are the HTML table's columns (registry included), chunked;
    a variant without a score shows '-'."""
    from rich.console import Console

    from safeadapt.report.columns import table_columns
    from safeadapt.report.console import MAX_COLUMNS, score_tables
    from safeadapt.results import ScoreSummary, StudySummary, VariantSummary, Verdict

    def score(mean, n=1):
        return ScoreSummary(mean, 0.01, n)

    variants = (
        VariantSummary(
            "lp", "lp", (0,), {"id_accuracy": score(0.8), "ece": score(0.05), "aurc": score(0.1)}
        ),
        VariantSummary(
            "ft[lr=1e-05]", "ft", (0, 1), {"id_accuracy": score(0.9, 2), "knn_auroc": score(0.7, 2)}
        ),
    )
    summary = StudySummary(
        study="s", task="t", modality="text", backbone="b", label_names=("no", "yes"), notes=(),
        sizes={}, seeds=(0, 1), splits=("test", "ood:x"), selection_splits=("val",),
        variants=variants, recommendation=Verdict("lp", "id-val", {}, "", "", ""),
    )  # fmt: skip
    tables = score_tables(summary)
    shown = [c for c in table_columns(summary) if c.key != "id_accuracy"]
    assert sum(len(t.columns) - 1 for t in tables) == len(shown)
    assert all(len(t.columns) - 1 <= MAX_COLUMNS for t in tables)
    console = Console(width=160, record=True)
    for t in tables:
        console.print(t)
    text = console.export_text()
    assert "ft[lr=1e-05]" in text and "0.700 ± 0.010" in text and "AURC (ID)" in text
    assert "-" in text

"""A golden study: a fixed small text study (lp, lp-ft, ldifs; one seed; the full safety suite)
must give the same records, summary, verdicts and report tables as when the golden file was
written -- the safety net of a redesign that must not change behaviour (issue 24).

Timings, paths, devices and versions are left out. Floats are compared to 1e-6 relative, since
another CPU may round BLAS sums differently. Regenerate deliberately, after a change that is
meant to move the numbers, with ``SAFEADAPT_WRITE_GOLDEN=1 pytest -m slow tests/study/test_golden.py``
and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "golden" / "text-study.json"

STUDY = {
    "name": "golden",
    "task": {"builtin": "vader-sentiment", "max_train": 160, "max_eval": 80},
    "backbone": {"name": "minilm", "options": {"max_length": 32}},
    "protocols": {
        "lp": {},
        "lp-ft": {"epochs": 1, "max_steps": 6, "batch_size": 16, "lr": 3e-5},
        "ldifs": {"epochs": 1, "max_steps": 6, "batch_size": 16, "lr": 3e-5},
    },
    "seeds": [0],
    "safety": {
        "adversarial": {"steps": 2, "max_examples": 16},
        "corruption": {"severities": [1, 5], "max_examples": 16},
        "forgetting": {"max_train": 40, "max_eval": 30},
    },
}

# keys whose values depend on the machine or the moment, not on the behaviour
VOLATILE = (
    *("seconds", "time", "date", "per_s", "rss", "memory", "peak"),  # speed and size
    *("path", "dir", "device", "version", "host", "pid", "environment"),  # where and on what
)


def _volatile(key: str) -> bool:
    # run ids and keys hash the resolved settings' layout, which a redesign may reshape
    hashed = {"run_id", "key"}
    return any(w in key.lower() for w in VOLATILE) or key in {"output", "report", "log", *hashed}


def normalise(value):
    """``value`` without volatile keys, tuples as lists, NaN as the string 'nan'."""
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items() if not _volatile(str(k))}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _table(path: Path) -> list[dict]:
    frame = pd.read_csv(path)
    frame = frame[[c for c in frame.columns if not _volatile(c)]]
    if "score" in frame:  # long tables: one row per score
        frame = frame[[not _volatile(str(name)) for name in frame["score"]]]
    return normalise(json.loads(frame.to_json(orient="records")))


def _unversioned(payload: dict) -> dict:
    """The JSON without its schema number (added by the redesign; the golden file predates it)."""
    return {k: v for k, v in payload.items() if k != "schema"}


def snapshot(out: Path, result) -> dict:
    records = {r.variant: normalise(_unversioned(r.to_json())) for r in result.runs}
    summary = normalise(_unversioned(result.summary.to_json()))
    summary.get("inputs", {}).pop("settings", None)  # a hash of the settings' layout too
    return {
        "records": records,
        "summary": summary,
        "results.csv": _table(out / "results.csv"),
        "variants.csv": _table(out / "variants.csv"),
    }


def assert_same(got, want, where: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert sorted(got) == sorted(want), f"{where}: keys {sorted(set(got) ^ set(want))}"
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), where
    else:
        assert got == want, where


@pytest.mark.slow
def test_the_golden_study_gives_the_golden_numbers(tmp_path, feature_cache):
    from safeadapt.study import StudyConfig, run_study

    config = StudyConfig.from_dict({**STUDY, "output": str(tmp_path / "out")})
    result = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    got = json.loads(json.dumps(snapshot(config.output_dir, result), default=str))
    if os.environ.get("SAFEADAPT_WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {GOLDEN}")
    assert_same(got, json.loads(GOLDEN.read_text()))


# record.json and summary.json of the golden study as the code before typed results wrote them
# (no schema number): they must read through the typed readers and write back unchanged.
V0 = GOLDEN.parent / "v0"


def test_files_written_before_the_schema_had_a_number_read_back_unchanged():
    from safeadapt.results import SCHEMA, RunRecord, StudySummary

    raw = json.loads((V0 / "record.json").read_text())
    record = RunRecord.from_json(raw)
    assert record.variant == "lp-ft" and record.test.accuracy == raw["metrics"]["test"]["accuracy"]
    assert record.cost.peak_rss_mb >= record.cost.fit.peak_rss_mb
    back = record.to_json()
    assert back.pop("schema") == SCHEMA
    assert back == {k: v for k, v in raw.items() if k != "checksum"}

    raw = json.loads((V0 / "summary.json").read_text())
    summary = StudySummary.from_json(raw)
    assert summary.pick.variant == summary.recommendation.variant == "lp-ft"
    assert summary.recommendation.chosen.rule == "ood-val"
    assert summary.variant("lp").scores["id_accuracy"].ci_method == "wilson"
    back = summary.to_json()
    assert back.pop("schema") == SCHEMA
    assert back == raw


def test_a_record_from_a_newer_safeadapt_is_refused_with_the_fix():
    from safeadapt.results import SCHEMA, RunRecord

    raw = {**json.loads((V0 / "record.json").read_text()), "schema": SCHEMA + 1}
    with pytest.raises(ValueError, match="upgrade safeadapt"):
        RunRecord.from_json(raw)

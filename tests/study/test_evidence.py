"""Stored evidence cannot pass a gate by being edited (issue 37): ``check`` and ``export``
recompute what they read from the stored records and predictions; ``run`` does not reuse an
edited record; with a signing key, evidence that was not signed by it is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from safeadapt.cli import app
from safeadapt.study.evidence import KEY_ENV, SIGNATURE
from safeadapt.study.store import record_checksum


@pytest.fixture(scope="module")
def finished(tmp_path_factory, feature_cache):
    """A tiny study run through the CLI, models kept, an honest check that fails (exit 1)."""
    from tests.study.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("evidence")
    raw = {**TINY_STUDY, "seeds": [0], "save_models": True, "safety": False,
           "preflight": {"checks": []}, "output": str(root / "out"),
           "checks": {"variant": "lp", "min_id_accuracy": 0.95}}  # fmt: skip
    study = root / "study.yaml"
    study.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(study)])
    assert result.exit_code == 1, result.output  # LP on 60 digits is below 0.95
    return study, raw


def _fresh(finished, tmp_path) -> tuple[Path, Path]:
    """A copy of the finished study (its own output folder) to tamper with."""
    study, raw = finished
    out = tmp_path / "out"
    shutil.copytree(raw["output"], out)
    copy = tmp_path / "study.yaml"
    copy.write_text(yaml.safe_dump({**raw, "output": str(out)}))
    return copy, out


def _run_folder(out: Path, variant: str) -> Path:
    return next(p for p in (out / "runs").iterdir() if p.name.startswith(f"{variant}-seed"))


def _rewrite_record(folder: Path, change) -> None:
    """Edit a record and give it a valid checksum again (what a careful forger does)."""
    path = folder / "record.json"
    doc = json.loads(path.read_text())
    doc.pop("checksum")
    change(doc)
    doc["checksum"] = record_checksum(doc)
    path.write_text(json.dumps(doc))


def _check(study: Path):
    return CliRunner().invoke(app, ["check", str(study)])


def test_an_edited_summary_does_not_pass_the_gate(finished, tmp_path):
    """The issue's case and its family: a summary's score, interval end or recommendation
    edited -- check exits 2 naming the score, instead of 0."""
    study, out = _fresh(finished, tmp_path)
    assert _check(study).exit_code == 1  # the honest verdict
    original = (out / "summary.json").read_text()

    def edit(change):
        doc = json.loads(original)
        change(doc)
        (out / "summary.json").write_text(json.dumps(doc))

    def score(doc, key):
        return next(v for v in doc["variants"] if v["variant"] == "lp")["scores"][key]

    cases = {
        "id_accuracy of 'lp'": lambda d: score(d, "id_accuracy").update(mean=0.99),
        "ci_low": lambda d: score(d, "id_accuracy").update(ci_low=0.96),
        "recommends": lambda d: d["recommendation"].update(
            variant="ft" if d["recommendation"]["variant"] == "lp" else "lp"),
    }  # fmt: skip
    for label, change in cases.items():
        edit(change)
        result = _check(study)
        assert result.exit_code == 2, (label, result.output)
        text = " ".join(result.output.split())
        assert "summary.json" in text and ("id_accuracy" in text or "recommends" in text), text
    (out / "summary.json").write_text(original)
    assert _check(study).exit_code == 1


def test_an_edited_record_is_refused_by_check_and_redone_by_run(finished, tmp_path):
    """A record whose accuracy (or Brier score) disagrees with its own predictions, checksum
    made valid again: check and export refuse it; run redoes that run only."""
    study, out = _fresh(finished, tmp_path)
    lp = _run_folder(out, "lp")
    original = (lp / "record.json").read_text()
    for metric in ("accuracy", "brier"):
        (lp / "record.json").write_text(original)
        test = json.loads((lp / "record.json").read_text())["metrics"]["test"]
        moved = (test[metric] + 0.25) % 1  # a clearly different value
        _rewrite_record(lp, lambda d, m=metric, v=moved: d["metrics"]["test"].update({m: v}))
        result = _check(study)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "disagrees with its own predictions" in text and metric in text, text
    export = CliRunner().invoke(app, ["export", str(study), "--out", str(tmp_path / "x")])
    assert export.exit_code == 2 and not (tmp_path / "x").exists(), export.output
    ft_before = (_run_folder(out, "ft") / "record.json").read_text()
    rerun = CliRunner().invoke(app, ["run", str(study)])
    assert rerun.exit_code == 1, rerun.output  # redone honestly: the check fails again
    assert "1 run now" in rerun.output and "1 finished runs reused" in rerun.output
    assert (_run_folder(out, "ft") / "record.json").read_text() == ft_before
    assert _check(study).exit_code == 1


def test_export_refuses_weights_copied_in_from_another_run(finished, tmp_path):
    study, out = _fresh(finished, tmp_path)
    shutil.copyfile(_run_folder(out, "ft") / "model.safetensors",
                    _run_folder(out, "lp") / "model.safetensors")  # fmt: skip
    result = CliRunner().invoke(
        app, ["export", str(study), "--out", str(tmp_path / "x"), "--variant", "lp"]
    )
    assert result.exit_code == 2, result.output
    assert "copied in from another run" in " ".join(result.output.split())


def test_with_a_signing_key_only_signed_unchanged_evidence_passes(finished, tmp_path, monkeypatch):
    """Signed by run with the key; check with it passes as without; a file changed after
    signing (even one the consistency check cannot see), a missing signature or another key is
    exit 2. Without the key, the signature is not needed."""
    study, out = _fresh(finished, tmp_path)
    monkeypatch.setenv(KEY_ENV, "k" * 32)
    assert _check(study).exit_code == 2  # unsigned
    assert CliRunner().invoke(app, ["run", str(study)]).exit_code == 1  # reuses, signs
    sig = json.loads((out / SIGNATURE).read_text())
    assert {"summary.json", "study.json"} <= set(sig["files"])
    assert any(name.endswith("model.safetensors") for name in sig["files"])
    assert _check(study).exit_code == 1  # the honest verdict, signed
    lp = _run_folder(out, "lp")
    # the protocol's fit info is not recomputed from predictions: only the signature sees it
    _rewrite_record(lp, lambda d: d.setdefault("info", {}).update(note="edited"))
    result = _check(study)
    assert result.exit_code == 2 and "after the evidence was signed" in result.output
    monkeypatch.delenv(KEY_ENV)
    assert _check(study).exit_code == 1  # consistency alone cannot see that edit
    monkeypatch.setenv(KEY_ENV, "another key")
    result = _check(study)
    assert result.exit_code == 2 and "not made with this signing key" in result.output
    export = CliRunner().invoke(app, ["export", str(study), "--out", str(tmp_path / "x")])
    assert export.exit_code == 2 and "signing key" in export.output, export.output

"""``check`` and ``export`` judge a finished study only when its summary was made from the study's
current inputs (issue 23, item 3): an in-place data edit or a changed setting is exit 2 with the
fix, never a pass on stale numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from tests.test_bad_inputs import _invoke


def _files(tmp_path):
    words = ["good", "fine", "great", "nice", "bad", "awful", "poor", "sad"]
    train = [(f"{words[i % 8]} movie number {i}", "pos" if i % 8 < 4 else "neg") for i in range(64)]
    test = [(f"{words[i % 8]} film {i}", "pos" if i % 8 < 4 else "neg") for i in range(32)]
    for name, rows in (("train", train), ("test", test)):
        pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / f"{name}.csv", index=False)


def _yaml(tmp_path, **changes):
    raw = {
        "name": "fresh",
        "task": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
        "backbone": {"name": "minilm", "options": {"max_length": 16}},
        "protocols": {"lp": {}},
        "safety": False,
        "preflight": {"checks": []},
        "save_models": True,
        "checks": {"min_id_accuracy": 0.0, "max_ece": 1.0},
        "output": str(tmp_path / "out"),
        **changes,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_check_and_export_refuse_a_stale_summary(tmp_path):
    _files(tmp_path)
    study = _yaml(tmp_path)
    code, text = _invoke("run", study, "--no-progress")
    assert code == 0, text
    code, text = _invoke("check", study)
    assert code == 0 and "max_ece" in text, text  # ECE is scored without the safety suite
    code, text = _invoke("export", study, "--out", tmp_path / "export")
    assert code == 0, text
    (tmp_path / "a-file").write_text("mine")
    code, text = _invoke("export", study, "--out", tmp_path / "a-file")
    assert code == 2 and "is a file; give a new folder" in text
    assert (tmp_path / "a-file").read_text() == "mine"

    # a bound changed: the same summary, judged again (not stale)
    _yaml(tmp_path, checks={"min_id_accuracy": 1.01})
    code, text = _invoke("check", study)
    assert code == 1 and "FAIL" in text

    # the training data edited in place: refused, with the fix
    with open(tmp_path / "train.csv", "a") as f:
        f.write("a new example,pos\n")
    _yaml(tmp_path)
    for args in (("check", study), ("export", study, "--out", tmp_path / "export-2")):
        code, text = _invoke(*args)
        assert code == 2, text
        joined = " ".join(text.split())
        assert "the data (a file it reads was edited" in joined and "safeadapt run" in joined
    assert not (tmp_path / "export-2").exists()

    # a setting that decides a result changed: refused too
    code, text = _invoke("run", study, "--no-progress")
    assert code == 0, text
    _yaml(tmp_path, protocols={"lp": {"c_grid": [0.1, 1.0]}})
    code, text = _invoke("check", study)
    assert code == 2 and "the study's settings" in " ".join(text.split())
    _yaml(tmp_path)
    code, text = _invoke("check", study)
    assert code == 0, text


def test_a_summary_without_inputs_is_refused(tmp_path):
    import json

    from safeadapt.errors import StaleStudy
    from safeadapt.results import StudySummary
    from safeadapt.study import load_study
    from safeadapt.study.freshness import ensure_fresh

    _files(tmp_path)
    config = load_study(_yaml(tmp_path))
    try:
        written = json.loads((Path(__file__).parent / "golden" / "v0" / "summary.json").read_text())
        unkeyed = StudySummary.from_json({k: v for k, v in written.items() if k != "inputs"})
        ensure_fresh(config, unkeyed, "check", "study.yaml")
    except StaleStudy as err:
        assert "does not record the inputs" in str(err)
    else:
        raise AssertionError("an unkeyed summary was judged")

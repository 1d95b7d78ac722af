"""The second bad-input catalogue (issue 23): a gate that cannot be hijacked, fooled, crashed by a
perfect model or confused with a crash. Each case: the exit code, one ``error:`` line naming the
input and the fix, no traceback on the console, and -- for the hijack / overwrite / stale cases --
that the wrong thing did not happen."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import yaml

from tests.test_bad_inputs import _invoke, _study


@pytest.fixture(autouse=True)
def _no_trust(monkeypatch):
    monkeypatch.delenv("SAFEADAPT_TRUST_CODE", raising=False)


def _error_line(text: str) -> str:
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    return errors[0]


# -- 1. a study YAML names code: it never runs without the runner's opt-in -----------------------


def _hijack(tmp_path, marker):
    return _study(
        tmp_path,
        backbone={"name": "module:os:system", "options": {"command": f"touch {marker}"}},
    )


def test_a_module_backbone_does_not_run_at_validate_run_or_shift(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = _hijack(tmp_path, marker)
    for args in (["validate", path], ["run", path, "--no-progress"], ["shift", "--study", path]):
        code, text = _invoke(*args)
        assert code == 2 and "--trust-code" in _error_line(text), text
        assert "A setting inside the study cannot allow it" in " ".join(text.split())
        assert not marker.exists(), args
    # even allowed, validate only finds the module: it never imports or calls it
    code, text = _invoke("validate", path, "--trust-code")
    assert code == 0 and "found, not built" in text, text
    assert not marker.exists()


def test_a_yaml_cannot_grant_its_own_trust(tmp_path):
    raw = yaml.safe_load(_hijack(tmp_path, tmp_path / "m").read_text())
    raw["trust_code"] = True
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    code, text = _invoke("validate", tmp_path / "study.yaml")
    assert code == 2 and "unknown key 'trust_code'" in text


def test_a_module_in_the_folder_the_command_runs_in_is_found(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text("raise SystemExit('imported at validate')\n")
    monkeypatch.chdir(tmp_path)
    path = _study(tmp_path, backbone={"name": "module:my_models:make_backbone"})
    code, text = _invoke("validate", path, "--trust-code")
    assert code == 0 and "found, not built" in text, text
    missing = _study(tmp_path, backbone={"name": "module:no_such_models:make"})
    code, text = _invoke("validate", missing, "--trust-code")
    assert code == 2 and "no module 'no_such_models'" in text and "PYTHONPATH" in text


def test_a_stock_model_type_that_names_custom_code_is_refused(tiny_bert, tmp_path):
    """10: a BERT folder whose auto_map names custom classes would silently run stock BERT."""
    import shutil

    folder = tmp_path / "bert-custom"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    pd.DataFrame({"text": ["a b", "c d"] * 5, "label": [0, 1] * 5}).to_csv(
        tmp_path / "t.csv", index=False
    )
    task = {"train": str(tmp_path / "t.csv"), "test": str(tmp_path / "t.csv")}
    code, text = _invoke(
        "validate", _study(tmp_path, task=task, backbone=f"hf:{folder}"), "--no-data"
    )
    assert code == 2 and "auto_map in config.json" in _error_line(text)
    asked = {"name": f"hf:{folder}", "options": {"trust_remote_code": True}}
    code, text = _invoke("validate", _study(tmp_path, task=task, backbone=asked), "--no-data")
    assert code == 2 and "--trust-code" in text  # the YAML's own yes is not enough


# -- 6-9: what the YAML or a table says must be what is used -------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("name: x\nprotocols:\n  ft: {lr: 1.0e-5}\n  ft: {lr: 1.0e-3}\n", "duplicate key 'ft' on lines 3 and 4"),
        ("name: x\nseeds: [0]\nseeds: [1]\n", "duplicate key 'seeds' on lines 2 and 3"),
        ("name: x\nprotocols: {lp: {}, lp: {}}\n", "duplicate key 'lp' on lines 2 and 2"),
    ],
)  # fmt: skip
def test_duplicate_yaml_keys_are_refused(tmp_path, text, expected):
    (tmp_path / "s.yaml").write_text(text)
    code, out = _invoke("validate", tmp_path / "s.yaml")
    assert code == 2 and expected in _error_line(out)


def test_two_labels_that_share_a_run_folder_are_refused(tmp_path):
    path = _study(tmp_path, protocols={"a b": {"protocol": "lp"}, "a_b": {"protocol": "lp"}})
    code, text = _invoke("validate", path, "--no-data")
    assert code == 2 and "would share the run folder name 'a_b'" in _error_line(text)


def _csv(tmp_path, body: str, name="t.csv"):
    (tmp_path / name).write_text(body)
    return str(tmp_path / name)


def test_labels_are_stripped_and_near_duplicates_warned(tmp_path):
    from safeadapt.data import load_task

    rows = "".join(f"text {i},{lab}\n" for i, lab in enumerate(["pos", "pos ", "neg", "Neg"] * 6))
    train = _csv(tmp_path, "text,label\n" + rows)
    test = _csv(tmp_path, "text,label\n" + rows.replace("text", "other"), "test.csv")
    task = load_task(train, test)
    assert task.label_names == ("Neg", "neg", "pos")  # 'pos ' is 'pos'
    path = _study(tmp_path, task={"train": train, "test": test},
                  backbone={"name": "minilm", "options": {"max_length": 16}})  # fmt: skip
    code, text = _invoke("validate", path)
    assert code == 0, text
    assert "warning: labels: 'Neg', 'neg' differ only by case" in " ".join(text.split())


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    train = _csv(tmp_path, "text,label,label\na,1,0\nb,0,1\n")
    path = _study(tmp_path, task={"train": train, "test": train}, backbone="minilm")
    code, text = _invoke("validate", path)
    assert code == 2 and "names column 'label' twice" in _error_line(text)


# -- 11: a diverging run stores nothing reusable -------------------------------------------------


def test_an_infinite_lr_is_refused_at_validate(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "name: x\ntask: {builtin: mnist}\nprotocols: {ft: {lr: .inf}}\n"
    )
    code, text = _invoke("validate", tmp_path / "s.yaml", "--no-data")
    assert code == 2 and "'lr' must be a finite number" in _error_line(text)


def test_a_diverging_run_fails_clearly_and_stores_nothing(tmp_path):
    path = _study(
        tmp_path,
        task={"builtin": "vader-sentiment", "max_train": 60, "max_eval": 40},
        backbone={"name": "minilm", "options": {"max_length": 16}},
        protocols={"ft": {"lr": 1000.0, "epochs": 1, "keep_start": False}},
    )
    code, text = _invoke("run", path, "--no-progress")
    assert code == 2 and "diverged" in _error_line(text) and "lower 'lr'" in text
    assert not list((tmp_path / "out").rglob("record.json"))


# -- 12-14: no output overwrites what safeadapt did not write ------------------------------------


def test_a_study_does_not_take_over_another_studys_folder(tmp_path):
    from safeadapt.errors import InvalidConfig
    from safeadapt.study.store import claim_output, study_of

    out = tmp_path / "out"
    claim_output(out, "study-a")
    (out / "report.html").write_text("A's report")
    with pytest.raises(InvalidConfig, match="holds the results of study 'study-a'.*--force"):
        claim_output(out, "study-b")
    claim_output(out, "study-a")  # its own study resumes
    code, text = _invoke("run", _study(tmp_path), "--no-progress")  # BASE is named 'bad'
    assert code == 2 and "study 'study-a', not 'bad'" in _error_line(text)
    assert (out / "report.html").read_text() == "A's report"
    claim_output(out, "study-b", force=True)
    assert study_of(out) == "study-b"


def test_curate_never_overwrites_its_input_or_an_existing_file(tmp_path):
    rows = "".join(f"t{i},{i % 2},{'ab'[i % 2]}\n" for i in range(40))
    train = _csv(tmp_path, "text,label,group\n" + rows)
    study = _study(tmp_path, task={"train": train, "test": train, "group_column": "group"},
                   backbone="minilm")  # fmt: skip
    before = (tmp_path / "t.csv").read_text()
    code, text = _invoke("curate", "--study", study, "--correlation", "0", "--out", train)
    assert code == 2 and "is the study's data" in _error_line(text)
    assert (tmp_path / "t.csv").read_text() == before
    other = tmp_path / "mine.csv"
    other.write_text("keep me")
    code, text = _invoke("curate", "--study", study, "--correlation", "0", "--out", other)
    assert code == 2 and "exists; give a new file name or pass --force" in text
    assert other.read_text() == "keep me"


@pytest.mark.parametrize("where", ["the yaml", "a folder", "a missing folder"])
def test_junit_never_overwrites_another_file_and_is_checked_first(tmp_path, where):
    path = _study(tmp_path)
    target = {
        "the yaml": path,
        "a folder": tmp_path,
        "a missing folder": tmp_path / "nope" / "checks.xml",
    }[where]
    before = path.read_text()
    code, text = _invoke("run", path, "--no-progress", "--junit", target)
    assert code == 2 and "--junit" in _error_line(text)
    assert path.read_text() == before
    assert not (tmp_path / "out").exists()  # refused before the study started


def test_junit_may_replace_its_own_file(tmp_path):
    from safeadapt.study.checks import is_our_junit, junit_error_xml

    ours = tmp_path / "checks.xml"
    ours.write_text(junit_error_xml("s", "error", "x"))
    assert is_our_junit(ours)
    (tmp_path / "theirs.xml").write_text("<testsuite/>")
    assert not is_our_junit(tmp_path / "theirs.xml")


# -- 15-19: validate bounds every size before allocating anything --------------------------------


@pytest.mark.timeout(60)
def test_a_huge_grid_is_counted_not_expanded(tmp_path):
    grid = {k: {"grid": list(range(1, 11))} for k in
            ("epochs", "batch_size", "patience", "last_k", "lora_r", "lora_alpha", "eval_batch_size")}  # fmt: skip
    code, text = _invoke("validate", _study(tmp_path, protocols={"ft": grid}), "--no-data")
    assert code == 2 and "10,000,000 runs" in _error_line(text) and "--max-runs" in text
    wide = {"ft": {"lr": {"grid": [1e-5 * (i + 1) for i in range(1001)]}}}
    code, text = _invoke("validate", _study(tmp_path, protocols=wide), "--no-data")
    assert code == 2 and "1,001 runs" in text
    code, text = _invoke(
        "validate", _study(tmp_path, protocols=wide), "--no-data", "--max-runs", "1001"
    )
    assert code == 0 and "1001 runs" in text


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"task": {"train": "a.csv", "test": "a.csv", "image_column": "image", "image_size": 20000}},
         "'task.image_size' must be an integer from 8 to 1024"),
        ({"protocols": {"ft": {"tune": "lora", "lora_r": 200000}}}, "'tune.lora.r' is 200000, above the limit of 4096"),
        ({"threads": 100000}, "'threads' must be an integer from 1 to 1024"),
        ({"name": "n" * 300}, "at most 100 characters"),
        ({"task": {"train": "a.csv", "test": "a.csv", "ood": {"bad\u0007name": "a.csv"}}},
         "no control characters"),
        ({"checks": {"max_ece": 0.1, "min_forgetting": -0.02}}, "is a safety-suite score"),
    ],
)  # fmt: skip
def test_sizes_and_names_are_bounded_at_validate(tmp_path, change, expected):
    code, text = _invoke("validate", _study(tmp_path, **change), "--no-data")
    assert code == 2 and expected in " ".join(_error_line(text).split()), text


def test_max_ece_is_scored_without_the_suite(tmp_path):
    code, text = _invoke("validate", _study(tmp_path, checks={"max_ece": 0.1}), "--no-data")
    assert code == 0, text


def test_a_lora_rank_beyond_the_backbone_is_refused(tmp_path):
    path = _study(tmp_path, protocols={"ft": {"tune": "lora", "lora_r": 4000}})
    code, text = _invoke("validate", path)
    assert code == 2 and "exceeds the width of this backbone's LoRA targets" in _error_line(text)


def test_an_ood_split_a_check_names_must_exist(tmp_path):
    path = _study(tmp_path, checks={"min_accuracy:ood:nosuch": 0.5})
    code, text = _invoke("validate", path)
    assert code == 2 and "OOD split 'nosuch'" in _error_line(text) and "digits" in text


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_pipes_never_hang_validate(tmp_path):
    (tmp_path / "pipe").mkdir()
    os.mkfifo(tmp_path / "pipe" / "study.yaml")
    code, text = _invoke("validate", tmp_path / "pipe" / "study.yaml")
    assert code == 2 and "not a regular file" in _error_line(text)
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "x.png")
    task = {"train": str(tmp_path / "images"), "test": str(tmp_path / "images"),
            "image_column": "image"}  # fmt: skip
    code, text = _invoke("validate", _study(tmp_path, task=task))
    assert code == 2 and "is not a regular file" in _error_line(text)


# -- 20: exit codes: 0 ok, 1 a check failed, 2 bad input, 3 a bug, 130 Ctrl-C --------------------


def test_a_crash_exits_3_with_a_log_and_a_junit_error(tmp_path, monkeypatch):
    import safeadapt.study as study_module

    def boom(*args, **kwargs):
        raise RuntimeError("boom in the runner")

    monkeypatch.setattr(study_module, "run_study", boom)
    junit = tmp_path / "checks.xml"
    code, text = _invoke("run", _study(tmp_path), "--no-progress", "--junit", junit)
    line = _error_line(text)
    assert code == 3 and "internal error (RuntimeError: boom in the runner)" in line
    import re

    log = re.search(r"traceback saved to (\S+\.log)", line).group(1)
    assert "Traceback" in open(log).read() and "boom in the runner" in open(log).read()
    os.unlink(log)
    xml = junit.read_text()
    assert "<error " in xml and "<failure" not in xml and 'errors="1"' in xml


def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path, monkeypatch):
    import safeadapt.study as study_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_module, "run_study", interrupted)
    code, text = _invoke("run", _study(tmp_path), "--no-progress")
    assert code == 130 and "run the same command again to resume" in text


def test_a_bad_input_error_is_written_to_junit_as_an_error(tmp_path):
    junit = tmp_path / "checks.xml"
    code, text = _invoke("run", _study(tmp_path, seeds=[0, 0]), "--junit", junit)
    assert code == 2 and "<error " in junit.read_text()


# -- 21: one-line errors naming the input and the fix ---------------------------------------------


def test_table_labels_must_be_single_values_of_one_type(tmp_path):
    from safeadapt.data import load_task
    from safeadapt.errors import DataError

    pd.DataFrame({"text": ["a", "b"], "label": [[1, 2], [0]]}).to_parquet(tmp_path / "l.parquet")
    with pytest.raises(DataError, match="data row 1: the label is a"):
        load_task(str(tmp_path / "l.parquet"), str(tmp_path / "l.parquet"))
    (tmp_path / "m.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "pos"}\n')
    with pytest.raises(DataError, match="column 'label' mixes strings and numbers"):
        load_task(str(tmp_path / "m.jsonl"), str(tmp_path / "m.jsonl"))


def test_an_empty_text_is_reported_by_its_row_in_the_file(tmp_path):
    from safeadapt.data import load_task
    from safeadapt.errors import DataError

    rows = [f"text {i}" for i in range(30)]
    rows[11] = '""'
    train = _csv(tmp_path, "text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(rows)))
    with pytest.raises(DataError, match=r"data row 12: text is missing"):
        load_task(train, train)


def test_a_tiny_ood_val_fraction_names_the_setting(tmp_path):
    path = _study(tmp_path, task={"builtin": "mnist", "max_train": 60, "max_eval": 40,
                                  "ood_val_fraction": 0.001})  # fmt: skip
    code, text = _invoke("validate", path)
    assert code == 2 and "'task.ood_val_fraction' 0.001 leaves" in _error_line(text)


def test_the_console_never_shows_a_traceback_for_bad_yaml(tmp_path):
    (tmp_path / "s.yaml").write_text("name: [unclosed\n")
    code, text = _invoke("validate", tmp_path / "s.yaml")
    assert code == 2 and "is not valid YAML" in _error_line(text) and "(line " in text


def test_shift_never_writes_into_a_folder_of_other_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "shift.json").write_text("my own analysis")
    code, text = _invoke("shift", "--task", "mnist", "--out", out)
    assert code == 2 and "holds files safeadapt did not write" in _error_line(text)
    assert (out / "shift.json").read_text() == "my own analysis"


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"preflight": {"checks": ["shift"], "n_permutations": 10**9}}, "'n_permutations' is 1000000000, above the limit"),
        ({"safety": {"calibration": {"bins": 10**9}}}, "'bins' is 1000000000, above the limit"),
        ({"backbone": {"name": "efficientnet-lite0", "options": {"image_size": 20000}}}, "option 'image_size' is 20000, above the limit of 1024"),
    ],
)  # fmt: skip
def test_more_sizes_are_bounded(tmp_path, change, expected):
    code, text = _invoke("validate", _study(tmp_path, **change))
    assert code == 2 and expected in " ".join(_error_line(text).split()), text

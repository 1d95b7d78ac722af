"""The monitor reads an export and its own state as untrusted input (issue 37): no name from
data becomes a path, the export is one unit keyed on every file it reads, malformed state files
are exit 2, and two monitors on one folder do not lose or repeat a window."""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from safeadapt.cli import app
from safeadapt.errors import DataError, InvalidConfig
from safeadapt.monitor import Monitor
from tests.monitor.test_monitor import _csv, _export


@pytest.fixture(scope="module")
def unit_export(tmp_path_factory, minilm_factory, feature_cache):
    """A small LP text export as ``safeadapt export`` writes it now: weights carrying their run
    id and key, the manifest naming them and the SHA-256 of every file the monitor reads."""
    from safeadapt.data import load_builtin_task
    from safeadapt.protocols import FitContext, make_protocol
    from safeadapt.study.export import export_files

    task = load_builtin_task("vader-sentiment").subsample(max_train=100, max_eval=100, seed=0)
    fit = make_protocol("lp").fit(FitContext(task, minilm_factory, 0, feature_cache, False))
    unit = _export(tmp_path_factory.mktemp("unit") / "export", fit.model, minilm_factory(),
                   task, {"name": "minilm", "options": {"max_length": 32}})  # fmt: skip
    model = fit.model
    model.save(unit / "model.safetensors", metadata={"run_id": "lp-seed0", "key": "k-lp"})
    manifest = json.loads((unit / "safeadapt.json").read_text())
    manifest.update(run_key="k-lp", files=export_files(unit))
    (unit / "safeadapt.json").write_text(json.dumps(manifest))
    return unit, task, model


def _copy(unit, tmp_path, name="e"):
    out = tmp_path / name
    shutil.copytree(unit, out)
    return out


def _edit_json(path, **changes):
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def _drop_files(folder):
    """The manifest without its file list (as exports before it, or an attacker, write it)."""
    doc = json.loads((folder / "safeadapt.json").read_text())
    doc.pop("files")
    (folder / "safeadapt.json").write_text(json.dumps(doc))


def test_every_file_of_an_export_is_tied_to_its_manifest(unit_export, tmp_path):
    """Edited thresholds, reversed label names, weights of another run: each refused before
    any window is measured, with the file named -- with or without the manifest's file list."""
    unit, task, model = unit_export
    Monitor(unit, tmp_path / "ok", window=20)  # the untouched export reads
    ref = "monitor/reference.json"
    meta = json.loads((unit / ref).read_text())
    edits = {
        "threshold": lambda f: _edit_json(f / ref, ood_threshold=-1e9, knn_threshold=-1e9),
        "atc": lambda f: _edit_json(f / ref, atc_threshold=-1e9),
        "labels": lambda f: _edit_json(f / ref, label_names=meta["label_names"][::-1]),
        "weights": lambda f: model.save(f / "model.safetensors",
                                        metadata={"run_id": "ft-seed0", "key": "k-ft"}),
        "tensors": lambda f: (f / "monitor/reference.safetensors").write_bytes(
            (unit / "monitor/reference.safetensors").read_bytes()[:-8] + b"\0" * 8),
    }  # fmt: skip
    for name, edit in edits.items():
        folder = _copy(unit, tmp_path, name)
        edit(folder)
        with pytest.raises(DataError, match="edited or swapped"):
            Monitor(folder, tmp_path / f"s-{name}", window=20)
    # without the file list, the claims inside the files still have to agree
    for name, message in (("labels", "names the classes"), ("weights", "the weights were swapped")):
        folder = _copy(unit, tmp_path, f"{name}-nolist")
        edits[name](folder)
        _drop_files(folder)
        with pytest.raises(DataError, match=message):
            Monitor(folder, tmp_path / f"n-{name}", window=20)


def test_a_state_is_keyed_on_every_file_the_monitor_reads(unit_export, tmp_path):
    """A state made on an export is refused once any file it reads changes (thresholds edited
    after the state exists switch no alert off); a schema-2 state, keyed on the weights and the
    reference tensors only, is taken over and keyed on all of them from then on."""
    unit, task, _ = unit_export
    names = np.asarray(task.label_names)
    rows = _csv(tmp_path / "rows.csv", task.test.inputs[:40], names[task.test.labels[:40]])
    folder = _copy(unit, tmp_path)
    _drop_files(folder)
    state = tmp_path / "state"
    Monitor(folder, state, window=20).update([rows])
    _edit_json(folder / "monitor/reference.json", ood_threshold=-1e9)
    with pytest.raises(InvalidConfig, match="watches another export"):
        Monitor(folder, state, window=20).update([rows])
    # a schema-2 header (the older key) on the unedited export
    from safeadapt.monitor.exported import content_key

    fresh = _copy(unit, tmp_path, "fresh")
    old = tmp_path / "old"
    Monitor(fresh, old, window=20).update([rows])
    header = json.loads((old / "safeadapt-monitor.json").read_text())
    key2 = content_key(fresh, ("model.safetensors", "monitor/reference.safetensors"))
    (old / "safeadapt-monitor.json").write_text(json.dumps({**header, "schema": 2, "export": key2}))
    again = Monitor(fresh, old, window=20).update([rows])
    assert len(again.windows) == 2 and not again.new  # nothing recounted
    upgraded = json.loads((old / "safeadapt-monitor.json").read_text())
    assert upgraded["schema"] == 4 and upgraded["export"] == header["export"]
    assert upgraded["signals"] == header["signals"]  # the same signals: no new alert budget
    assert upgraded["budgets"] == []


def test_no_label_name_from_an_export_becomes_a_path(tmp_path):
    """The images of an alerted window are kept under a folder per class whose name follows
    the safe-name rule, whatever the export's label names say; names the rule folds together
    keep apart by their class index."""
    from safeadapt.monitor.drifted import keep_window
    from safeadapt.monitor.inputs import Rows

    hostile = ("../../x", "/etc/cron.d/evil", "..", "a/b", "a_b", ".hidden", "~", "é")
    n = len(hostile)
    images = np.zeros((n, 4, 4, 3), dtype=np.uint8)
    rows = Rows(images, np.arange(n), None, [str(i) for i in range(n)])
    out = tmp_path / "state"
    out.mkdir()
    assert keep_window(out, 0, rows, hostile) == n
    written = [p.resolve() for p in tmp_path.rglob("*.png")]
    assert len(written) == n
    assert all((out / "drifted" / "images").resolve() in p.parents for p in written)
    folders = {p.parent.name for p in written}
    assert len(folders) == n  # "a/b" and "a_b" did not merge
    assert not (tmp_path / "x").exists() and not any(f.startswith(".") for f in folders)


def test_malformed_state_files_are_exit_2_naming_the_file(unit_export, tmp_path):
    unit, task, _ = unit_export
    names = np.asarray(task.label_names)
    rows = _csv(tmp_path / "rows.csv", task.test.inputs[:60], names[task.test.labels[:60]])
    runner = CliRunner()
    out = tmp_path / "state"
    args = ["monitor", str(unit), str(rows), "--window", "20", "--out", str(out)]
    base = runner.invoke(app, args)
    assert base.exit_code == 0, base.output
    windows = out / "windows"
    good = {p.name: p.read_text() for p in windows.iterdir()}
    header = (out / "safeadapt-monitor.json").read_text()
    cases = {
        "result": lambda: (windows / "00000001.json").write_text('{"result": 5, "keys": []}'),
        "list": lambda: (out / "safeadapt-monitor.json").write_text("[]"),
        "key": lambda: (out / "safeadapt-monitor.json").write_text(
            json.dumps({**json.loads(header), "extra": 1})),
        "twice": lambda: (windows / "00000002.json").write_text(good["00000001.json"]),
        "missing": lambda: (windows / "00000001.json").unlink(),
    }  # fmt: skip
    messages = {"result": "00000001.json", "list": "safeadapt-monitor.json",
                "key": "unknown key 'extra'", "twice": "00000002.json holds window 1",
                "missing": "window 1 is missing before it"}  # fmt: skip
    for name, spoil in cases.items():
        spoil()
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (name, result.output)
        assert messages[name] in " ".join(result.output.split()), (name, result.output)
        (out / "safeadapt-monitor.json").write_text(header)  # restore
        for file, text in good.items():
            (windows / file).write_text(text)


def test_two_monitors_on_one_folder_write_each_window_once(unit_export, tmp_path):
    """While one monitor holds the state's lock, a second waits; then it reads the windows the
    first wrote and measures only the rows they did not count."""
    from safeadapt.monitor.state import state_lock

    unit, task, _ = unit_export
    names = np.asarray(task.label_names)
    rows = _csv(tmp_path / "rows.csv", task.test.inputs[:40], names[task.test.labels[:40]])
    out = tmp_path / "state"
    first = Monitor(unit, out, window=20)
    second = Monitor(unit, out, window=20)
    first.update([rows])  # 2 windows
    more = _csv(tmp_path / "more.csv", task.test.inputs[:80], names[task.test.labels[:80]])
    done: dict = {}
    with state_lock(out):
        worker = threading.Thread(target=lambda: done.update(r=second.update([more])))
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive() and "r" not in done  # waits for the lock
    worker.join(120)
    assert [w.index for w in done["r"].windows] == [0, 1, 2, 3] and done["r"].new == (2, 3)
    assert sorted(p.name for p in (out / "windows").iterdir()) == [
        f"{i:08d}.json" for i in range(4)
    ]
    assert not first.update([more]).new  # the first monitor sees the second's windows


def test_inputs_mean_one_thing(unit_export, tmp_path):
    """A file given twice counts once; times are ordered by the instant they name (UTC offsets
    included) and a value that is not a time is refused naming its row; a text is not a list
    of characters; settings of the wrong type are one-line errors."""
    import pandas as pd

    unit, task, _ = unit_export
    names = np.asarray(task.label_names)
    rows = _csv(tmp_path / "rows.csv", task.test.inputs[:40], names[task.test.labels[:40]])
    twice = Monitor(unit, tmp_path / "twice", window=20).update([rows, rows, tmp_path / "rows.csv"])
    assert len(twice.windows) == 2 and twice.pending == 0 and twice.skipped == 0
    # the same instant written in two offsets, and a later one in a third
    times = ["2026-12-03T18:00:00+01:00", "2026-12-03T16:30:00Z", "2026-12-03T12:00:00-05:00"]
    stamped = pd.DataFrame({"text": task.test.inputs[:3], "t": times})
    order = __import__("safeadapt.monitor.inputs", fromlist=["time_order"]).time_order
    assert list(order(list(stamped["t"]), "t")) == [1, 0, 2]  # 16:30Z, 17:00Z, 17:00Z
    assert list(order([3, 1.5, 2], "t")) == [1, 2, 0]
    for bad, message in ((["2026-12-03", "soon"], "row 2: 'soon' is not a time"),
                         (["2026-12-03T10:00Z", "2026-12-03T11:00"], "with a UTC offset"),
                         ([1, "2026-12-03"], "mixes numbers and texts")):  # fmt: skip
        with pytest.raises(DataError, match=message):
            order(bad, "t")
    mon = Monitor(unit, tmp_path / "mem", window=20)
    with pytest.raises(DataError, match=r"wrap it: \[text\]"):
        mon.observe("one text")
    with pytest.raises(InvalidConfig, match="--alpha must be a number"):
        Monitor(unit, tmp_path / "a", alpha="0.05")


def test_a_manifest_of_other_classes_than_its_weights_names_both(unit_export, tmp_path):
    unit, _, _ = unit_export
    folder = _copy(unit, tmp_path)
    _drop_files(folder)
    _edit_json(folder / "safeadapt.json", label_names=["neg", "pos", "neutral"], num_classes=3)
    with pytest.raises(DataError, match="num_classes 2.*describes num_classes 3"):
        Monitor(folder, tmp_path / "s", window=20)


def test_outputs_of_one_command_never_share_a_path(unit_export, tmp_path):
    """--junit and --suggest-study naming one file, either inside --out, --out overlapping the
    export, and --suggest-study without the labels it needs: refused before any window is
    measured (the state stays empty)."""
    unit, task, _ = unit_export
    names = np.asarray(task.label_names)
    rows = _csv(tmp_path / "rows.csv", task.test.inputs[:40], names[task.test.labels[:40]])
    out = tmp_path / "state"
    base = ["monitor", str(unit), str(rows), "--window", "20"]
    same = tmp_path / "x.xml"
    cases = {
        "name the same file": ["--out", str(out), "--labels", "label", "--junit", str(same),
                               "--suggest-study", str(same)],
        "inside --out": ["--out", str(out), "--labels", "label", "--suggest-study",
                         str(out / "next.yaml")],
        "overlap": ["--out", str(unit / "state")],
        "needs the labels": ["--out", str(out), "--suggest-study", str(tmp_path / "n.yaml")],
    }  # fmt: skip
    for message, extra in cases.items():
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert not out.exists() and not (unit / "state").exists()


def test_kept_rows_carry_the_studys_own_column_names(tmp_path):
    import pandas as pd

    from safeadapt.monitor.drifted import keep_window
    from safeadapt.monitor.inputs import Rows

    rows = Rows(["good", "bad", "meh"], np.asarray([1, 0, -1]), None, ["a", "b", "c"])
    assert keep_window(tmp_path, 3, rows, ("neg", "pos"), ("review", "sentiment")) == 2
    kept = pd.read_csv(tmp_path / "drifted" / "window-00003.csv")
    assert list(kept.columns) == ["review", "sentiment"] and list(kept["sentiment"]) == [
        "pos",
        "neg",
    ]


def test_files_written_for_others_keep_the_users_umask(unit_export, tmp_path):
    import os
    import stat

    from safeadapt.study.export import export_files

    unit, _, _ = unit_export
    old = os.umask(0o022)
    try:
        model = __import__("safeadapt.monitor.exported", fromlist=["x"]).load_exported(unit)
        model.save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
    assert set(export_files(unit)) >= {"model.safetensors", "monitor/reference.json"}


def test_a_reference_claiming_more_rows_than_a_reference_is_refused_from_its_header(tmp_path):
    """The tensors' shapes are read from the safetensors header and bounded before any tensor
    is allocated; a kept window's CSV that does not read is exit 2 naming it."""
    import torch

    from safeadapt.files import save_verified
    from safeadapt.monitor.drifted import read_kept
    from safeadapt.monitor.reference import REFERENCE_SIZE, Reference
    from tests.test_readback import _reference_folder, _reference_meta

    folder = _reference_folder(tmp_path / "ok", _reference_meta())
    Reference.load(folder)
    big = REFERENCE_SIZE + 1
    save_verified({"pretrained": torch.zeros(big, 4), "logits": torch.zeros(big, 2),
                   "labels": torch.zeros(big, dtype=torch.int64)},
                  folder / "monitor" / "reference.safetensors")  # fmt: skip
    with pytest.raises(DataError, match="larger than a reference"):
        Reference.load(folder)
    bad = tmp_path / "window-00001.csv"
    bad.write_bytes(b'"unclosed\n\xff\xfe')
    with pytest.raises(DataError, match="window-00001.csv is not a table"):
        read_kept(bad)

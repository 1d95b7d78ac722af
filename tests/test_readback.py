"""Files read back are untrusted input (issue 37): the typed reader, the safe-name rule, and a
hypothesis fuzz of every reader of the monitor's and the export's files -- each either reads the
file or refuses it with a SafeAdaptError (exit 2), never another exception (exit 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeadapt.errors import DataError, SafeAdaptError
from safeadapt.readback import inside, read_object, safe_part, typed


@dataclass(frozen=True)
class Inner:
    rate: float
    n: int


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    flags: tuple[bool, ...] = ()
    pair: tuple[float, float] | None = None
    table: dict[str, Inner] = field(default_factory=dict)


GOOD = {"name": "a", "inner": {"rate": 0.5, "n": 3}, "flags": [True], "pair": [0.1, 0.2],
        "table": {"x": {"rate": 1, "n": 0}}}  # fmt: skip


def test_the_typed_reader_refuses_every_kind_of_wrong_key_naming_it():
    assert typed(Outer, GOOD, "f.json", "fix") == Outer(
        "a", Inner(0.5, 3), (True,), (0.1, 0.2), {"x": Inner(1.0, 0)}
    )
    cases = {
        "misses key 'inner'": {"name": "a"},
        "unknown key 'extra'": {**GOOD, "extra": 1},
        "key 'name' must be a text; got 5": {**GOOD, "name": 5},
        "key 'rate' must be a number; got 'hot'": {**GOOD, "inner": {"rate": "hot", "n": 1}},
        "key 'n' must be an integer; got true": {**GOOD, "inner": {"rate": 1, "n": True}},
        "key 'n' must be an integer; got 1.5": {**GOOD, "inner": {"rate": 1, "n": 1.5}},
        "must be a finite number": {**GOOD, "inner": {"rate": float("inf"), "n": 1}},
        "key 'pair' must hold 2 values; got 3": {**GOOD, "pair": [1, 2, 3]},
        "key 'flags'\\[0\\] must be true or false": {**GOOD, "flags": ["yes"]},
        "key 'table'\\['x'\\] must be a JSON object; got a list": {**GOOD, "table": {"x": []}},
        "f.json must be a JSON object; got a list of 0": [],
        "must be an integer; got 9223372036854775808": {**GOOD, "inner": {"rate": 1, "n": 2**63}},
    }
    for message, raw in cases.items():
        with pytest.raises(DataError, match=message):
            typed(Outer, raw, "f.json", "fix")


def test_read_object_refuses_what_is_not_a_json_object(tmp_path):
    path = tmp_path / "x.json"
    for text, message in (("[1]", "holds a list of 1, not a JSON object"), ("{", "not readable"),
                          ("5", "holds 5"), ('"a"', "holds 'a'"), ("\xff", "not readable"),
                          ("[" * 100_000, "not readable")):  # fmt: skip
        path.write_text(text, encoding="latin-1")
        with pytest.raises(DataError, match=message):
            read_object(path, "fix it")


HOSTILE = ["../../x", "/etc/cron.d/x", "..", ".", "", "a/b", "a\\b", "~root", ".hidden",
           "con\x00nul", "\u202e/evil", "x" * 10_000, "..\\..\\x", "a/../../b", "é/ü"]  # fmt: skip


@given(st.text(max_size=60) | st.sampled_from(HOSTILE))
def test_no_name_from_data_leaves_its_folder(name):
    """The safe-name rule, over hostile and arbitrary names: one path part, no separator, not
    hidden or a parent reference; joined to a folder it stays inside it."""
    part = safe_part(name, 100)
    assert part and "/" not in part and "\\" not in part and "\x00" not in part
    assert not part.startswith(".") and len(part) <= 100
    root = Path("/tmp/safeadapt-root")
    assert inside(root, root / part) == root / part


def test_inside_refuses_a_path_that_resolves_out(tmp_path):
    with pytest.raises(DataError, match="outside"):
        inside(tmp_path / "a", tmp_path / "a" / ".." / "b")


# --- the fuzz of every reader of the monitor's and the export's files ---

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip


def _mutations(valid: dict):
    """A valid document with one key dropped, replaced by an arbitrary value, or added; or an
    arbitrary document."""
    keys = sorted(valid)
    drop = st.sampled_from(keys).map(lambda k: {x: v for x, v in valid.items() if x != k})
    swap = st.tuples(st.sampled_from(keys), JSON).map(lambda kv: {**valid, kv[0]: kv[1]})
    add = st.tuples(st.text(max_size=8), JSON).map(lambda kv: {**valid, kv[0]: kv[1]})
    return drop | swap | add | JSON


def _manifest() -> dict:
    from safeadapt.results.export import BackboneRef, ExportManifest, MonitorEntry

    return ExportManifest(
        safeadapt="0.1.0", backbone=BackboneRef("minilm", {"max_length": 32}),
        label_names=("neg", "pos"), modality="text", variant="lp", protocol="lp",
        settings={}, seed=0, run_id="lp-seed0-abc", study="s", task="t",
        monitor=MonitorEntry("monitor", 40, "text", None),
    ).to_json()  # fmt: skip


def _reference_meta() -> dict:
    return {"schema": 1, "label_names": ["neg", "pos"], "temperature": 1.2, "accuracy": 0.8,
            "confidence_mean": 0.7, "atc_threshold": -0.4, "ood_detector": "energy",
            "ood_threshold": -3.0, "ood_reference_flagged": 1, "ood_reference_n": 20,
            "same_backbone": True, "checks": [{"split": "test", "n": 40, "accuracy": 0.8,
                                               "atc": 0.78, "doc": 0.79}],
            "seed": 0, "extra": {}, "knn_k": 5, "knn_threshold": -1.0,
            "knn_reference_flagged": 1}  # fmt: skip


def _window() -> dict:
    return {"result": {"index": 0, "key": "k", "rows": 2, "start": None, "end": None,
                       "level": 0.001, "tests": {"prediction": {"statistic": 1.0,
                                                                "p_value": 0.5, "alert": False}},
                       "ood": {"rate": 0.1, "ci_low": 0.0, "ci_high": 0.3,
                               "reference_rate": 0.05},
                       "atc": 0.8, "doc": 0.8, "accuracy": None, "class_share": [0.5, 0.5]},
            "keys": ["a", "b"]}  # fmt: skip


def _header() -> dict:
    return {"schema": 3, "export": "abc", "settings": {"window": 20, "alpha": 0.05}}


def _reference_folder(tmp: Path, meta) -> Path:
    import torch

    from safeadapt.files import save_verified

    folder = tmp / "monitor"
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    save_verified({"pretrained": torch.randn(40, 4, generator=g),
                   "logits": torch.randn(40, 2, generator=g),
                   "labels": torch.arange(40) % 2}, folder / "reference.safetensors")  # fmt: skip
    (folder / "reference.json").write_text(json.dumps(meta))
    return tmp


def _readers():
    from safeadapt.monitor.exported import read_manifest
    from safeadapt.monitor.reference import Reference
    from safeadapt.monitor.state import read_header, read_window

    def manifest(tmp, doc):
        (tmp / "safeadapt.json").write_text(json.dumps(doc))
        return read_manifest(tmp)

    def reference(tmp, doc):
        return Reference.load(_reference_folder(tmp, doc))

    def header(tmp, doc):
        (tmp / "safeadapt-monitor.json").write_text(json.dumps(doc))
        return read_header(tmp / "safeadapt-monitor.json")

    def window(tmp, doc):
        (tmp / "00000000.json").write_text(json.dumps(doc))
        return read_window(tmp / "00000000.json", expected=0)

    return {"manifest": (manifest, _manifest()), "reference": (reference, _reference_meta()),
            "header": (header, _header()), "window": (window, _window())}  # fmt: skip


@pytest.mark.parametrize("reader", ["manifest", "reference", "header", "window"])
def test_every_reader_reads_its_valid_file(reader, tmp_path):
    read, valid = _readers()[reader]
    read(tmp_path, valid)


@pytest.mark.parametrize("reader", ["manifest", "reference", "header", "window"])
def test_every_reader_refuses_a_malformed_file_with_exit_2_never_3(reader, tmp_path):
    """Hypothesis over each reader: a dropped, replaced or added key, or any JSON document at
    all, reads or raises a SafeAdaptError (the CLI's exit 2) -- never anything else."""
    read, valid = _readers()[reader]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_mutations(valid))
    def fuzz(doc):
        try:
            read(tmp_path, doc)
        except SafeAdaptError:
            pass

    fuzz()


GOLDEN = Path(__file__).resolve().parent / "study" / "golden" / "v0"


def test_the_stored_results_readers_never_crash(tmp_path):
    """summary.json (the reader check / export use) and record.json (the store's), from a
    real stored study, fuzzed the same way: a summary reads or is exit 2; a record reads or is
    set aside for the run to be redone -- never an exception."""
    from safeadapt.study.freshness import read_summary
    from safeadapt.study.plan import RunSpec
    from safeadapt.study.store import RunStore, record_checksum

    summary = json.loads((GOLDEN / "summary.json").read_text())
    record = json.loads((GOLDEN / "record.json").read_text())
    run = record["run"]
    spec = RunSpec(run["variant"], run["label"], run["protocol"], run["settings"], run["seed"],
                   run["key"])  # fmt: skip
    store = RunStore(tmp_path / "out")
    read_summary_ok = read_summary(_write(tmp_path / "s.json", summary), "fix")
    assert read_summary_ok.variants
    body = {k: v for k, v in record.items() if k != "checksum"}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_mutations(summary), _mutations(body), st.booleans())
    def fuzz(doc, rec, checksum):
        try:
            read_summary(_write(tmp_path / "s.json", doc), "fix")
        except SafeAdaptError:
            pass
        if checksum and isinstance(rec, dict):
            rec = {**rec, "checksum": record_checksum(rec)}  # a forger's valid checksum
        _write(store.folder(spec) / "record.json", rec)
        store.load(spec, move_aside=False)  # a record or None

    fuzz()
    # a score of the wrong type is exit 2 by name, not a comparison that fails later
    bad = json.loads(json.dumps(summary))
    next(iter(bad["variants"][0]["scores"].values()))["mean"] = "0.99"
    with pytest.raises(SafeAdaptError, match="key 'mean' must be a number"):
        read_summary(_write(tmp_path / "s.json", bad), "fix")


def _write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path

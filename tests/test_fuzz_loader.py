"""Fuzzing what ``validate`` reads (issue 23): random YAML documents and random CSV / JSONL / Parquet
tables end in exit 0 or 2 with one ``error:`` line -- never 3 (a crash), never a traceback, within
a time bound (pytest-timeout) and a memory bound (the process's peak RSS)."""

from __future__ import annotations

import resource

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from safeadapt.cli import app

runner = CliRunner()

KEYS = [
    "name", "task", "protocols", "seeds", "safety", "backbone", "checks", "output", "threads",
    "builtin", "train", "test", "ood", "ood_val", "max_train", "max_eval", "image_size",
    "ood_val_fraction", "lr", "epochs", "grid", "tune", "lora_r", "c_grid", "options", "families",
    "calibration", "adversarial", "eps", "max_ece", "min_ood_accuracy", "use", "variant", "lp",
    "ft", "lp-ft", "mnist", "vader-sentiment", "preflight", "executor", "recommend",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(KEYS),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PEAK_MB = 6_000  # the process's peak RSS: a loader that expands what it reads blows past it


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _check(out) -> None:
    text = out.output
    assert "Traceback" not in text, text
    assert out.exit_code in (0, 2), (out.exit_code, text)
    if out.exit_code == 2:
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, text
    assert _peak_mb() < PEAK_MB


@pytest.mark.timeout(300)
@FUZZ
@given(doc=documents)
def test_random_yaml_documents_are_valid_or_one_line_errors(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "study.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _check(runner.invoke(app, ["validate", str(path), "--no-data"]))


@pytest.mark.timeout(300)
@FUZZ
@given(text=st.text(max_size=300))
def test_random_yaml_text_is_valid_or_one_line_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "study.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(runner.invoke(app, ["validate", str(path), "--no-data"]))


cells = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.text(max_size=12),
    st.sampled_from(["pos", "neg", " pos", "Neg", "", "1", "0"]),
    st.lists(st.integers(0, 2), max_size=2),
)
tables = st.integers(1, 12).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "columns": st.lists(
                st.sampled_from(["text", "label", "group", "extra", "label "]),
                min_size=1,
                max_size=4,
            ),
            "rows": st.lists(st.lists(cells, min_size=4, max_size=4), min_size=n, max_size=n),
            "format": st.sampled_from(["csv", "jsonl", "parquet"]),
        }
    )
)


def _write(folder, name, table) -> str:
    columns = list(dict.fromkeys(table["columns"]))
    frame = pd.DataFrame([row[: len(columns)] for row in table["rows"]], columns=columns)
    path = folder / f"{name}.{table['format']}"
    if table["format"] == "csv":
        frame.to_csv(path, index=False)
    elif table["format"] == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        try:
            frame.to_parquet(path, index=False)
        except Exception:  # a column pyarrow cannot type (mixed lists and scalars): as JSONL
            path = folder / f"{name}.jsonl"
            frame.to_json(path, orient="records", lines=True)
    return str(path)


@pytest.mark.timeout(300)
@FUZZ
@given(train=tables, test=tables)
def test_random_tables_load_or_are_one_line_errors(tmp_path_factory, train, test):
    """The data path of ``validate`` (``TaskSpec.load``: read, labels, hold-out, leakage)."""
    from safeadapt.errors import SafeAdaptError
    from safeadapt.study.specs import TaskSpec

    folder = tmp_path_factory.mktemp("tables")
    spec = TaskSpec(train=_write(folder, "train", train), test=_write(folder, "test", test))
    try:
        task = spec.load()
    except SafeAdaptError as err:
        assert "\n" not in str(err).strip(), str(err)
    else:
        assert len(task.train) > 0 and len(task.test) > 0
    assert _peak_mb() < PEAK_MB

"""The signal registry: a signal is one class in one module; the monitor's windows, its CSV,
its page, its summary and its state header read it from the registry; the header's list of
signals keeps a resumed stream at the alert level it began with."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from safeadapt.errors import InvalidConfig
from safeadapt.monitor import Monitor
from safeadapt.monitor.signals import SIGNALS, Signal, Test, Window, register_signal
from tests.monitor.test_monitor import _csv
from tests.monitor.test_untrusted import unit_export  # noqa: F401  (a fixture)


@dataclass(frozen=True)
class ConfidenceDriftResult:
    test: Test
    mean: float


@pytest.fixture
def confidence_drift():
    """A signal as a new module would add it: the window's max-softmax confidences against the
    reference's (two-sample Kolmogorov-Smirnov), alerting; registered for this test only."""

    @register_signal("confidence_drift", order=35, alerts=True)
    class ConfidenceDrift(Signal):
        label = "confidence drift (max softmax, Kolmogorov-Smirnov)"
        Result = ConfidenceDriftResult

        def fit(self, reference, head) -> None:
            self._reference = reference.logits.double().softmax(1).max(1).values.numpy()

        def measure(self, window: Window) -> ConfidenceDriftResult:
            from scipy.stats import ks_2samp

            conf = window.logits.double().softmax(1).max(1).values.numpy()
            ks = ks_2samp(self._reference, conf)
            test = Test(float(ks.statistic), float(ks.pvalue), ks.pvalue <= window.level)
            return ConfidenceDriftResult(test, float(conf.mean()))

        def columns(self, result, window) -> dict:
            return {"confidence_mean": result.mean if result else None}

        def text(self, result) -> str | None:
            return f"mean confidence {result.mean:.3f}" if result else None

    yield ConfidenceDrift
    SIGNALS._items.pop("confidence_drift")
    SIGNALS._order.pop("confidence_drift")


def _rows(task, tmp_path, start, stop):
    names = np.asarray(task.label_names)
    part = slice(start, stop)
    return _csv(
        tmp_path / f"rows-{start}.csv", task.test.inputs[part], names[task.test.labels[part]]
    )


def test_a_new_signal_is_one_class_and_a_resumed_stream_keeps_its_alert_level(
    unit_export,  # noqa: F811
    tmp_path,
    request,
):
    folder, task, _ = unit_export
    out = tmp_path / "state"
    first = Monitor(folder, out, window=20).update([_rows(task, tmp_path, 0, 40)])
    assert len(first.windows) == 2
    # a release (here: a test) that adds a signal: resuming the stream is refused in one line
    request.getfixturevalue("confidence_drift")
    more = [_rows(task, tmp_path, 0, 40), _rows(task, tmp_path, 40, 80)]
    with pytest.raises(InvalidConfig, match=r"other signals \(added confidence_drift\)"):
        Monitor(folder, out, window=20).update(more)
    # ... or, by choice, a new alert budget from the next window
    result = Monitor(folder, out, window=20, allow_new_signals=True).update(more)
    assert result.new == (2, 3) and result.budgets == (2,)
    assert "The signals changed at window 2 (added confidence_drift)" in result.summary()
    old, new = result.windows[1], result.windows[2]
    assert "confidence_drift" not in old.tests and "confidence_drift" in new.tests
    assert new.level == pytest.approx(old.level * len(old.tests) / (len(old.tests) + 1))
    assert new.tests["prediction"].alert is False  # the others still run
    # the new signal's own columns, summary text, panel and header entry
    frame = pd.read_csv(out / "monitor.csv")
    assert frame["confidence_drift_p"].isna().tolist() == [True, True, False, False]
    assert 0.5 < frame["confidence_mean"].iloc[-1] <= 1
    assert "mean confidence" in result.summary()
    page = (out / "monitor.html").read_text()
    assert page.count('<img class="plot"') == 2
    header = json.loads((out / "safeadapt-monitor.json").read_text())
    assert "confidence_drift" in [s["name"] for s in header["signals"]]
    assert header["budgets"] == [2]
    # a later run without the signal is refused too (the windows hold its results)
    SIGNALS._items.pop("confidence_drift")
    order = SIGNALS._order.pop("confidence_drift")
    try:
        with pytest.raises(InvalidConfig, match=r"removed confidence_drift"):
            Monitor(folder, out, window=20).update(more)
    finally:
        SIGNALS._items["confidence_drift"] = request.getfixturevalue("confidence_drift")
        SIGNALS._order["confidence_drift"] = order


def test_every_signal_is_typed_ordered_and_named_once():
    """Every registered signal has a typed result (a dataclass: read back strictly), a label,
    a distinct order; the alerting ones keep their test as ``result.test``."""
    import dataclasses
    import typing

    from safeadapt.monitor.signals import registered

    classes = registered()
    assert [c.name for c in classes][:5] == ["embedding_pretrained", "embedding_adapted",
                                             "prediction", "ood_rate", "ood_rate_knn"]  # fmt: skip
    assert len({c.order for c in classes}) == len(classes)
    for cls in classes:
        assert dataclasses.is_dataclass(cls.Result), cls
        if cls.alerts:
            assert typing.get_type_hints(cls.Result)["test"] is Test, cls
        assert cls.label or cls.name == "ood_rate_more", cls

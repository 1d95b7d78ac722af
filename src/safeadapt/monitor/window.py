"""One window of production inputs measured against the export's reference: typed results and
the alert policy.

The alert policy is Bonferroni over a declared horizon: with ``alpha`` the family-wise false
alarm rate a user accepts over ``horizon`` windows, each of the window's tests runs at
``alpha / (horizon x tests)``. Past the horizon, each further block of ``horizon`` windows has
the same guarantee. Why Bonferroni and not a calibrated expected run time (alibi-detect): it
holds under any dependence -- the windows share one reference sample, and a window's tests share
its inputs -- and needs no simulation of the null stream at export time; the price is that it
is conservative, which shows as a longer detection delay (``bench/bench_monitor.py`` measures
it) rather than as false alarms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from safeadapt.errors import DataError
from safeadapt.monitor.signals.base import Signal, Test, Window, signal_for


@dataclass(frozen=True)
class AlertPolicy:
    alpha: float = 0.05
    horizon: int = 50

    def level(self, tests: int) -> float:
        """The level each of a window's ``tests`` runs at."""
        return self.alpha / (self.horizon * tests)

    def describe(self) -> str:
        return (f"Bonferroni: false alarms at most {self.alpha:g} over each {self.horizon} "
                "windows, under any dependence between windows and tests")  # fmt: skip


@dataclass(frozen=True)
class WindowResult:
    """One measured window: who it is (index, content key of its rows, rows, time span), the
    level its tests ran at, each signal's typed result under the signal's name (None where the
    signal had nothing to say, e.g. accuracy without labels), and the wall time."""

    index: int
    key: str  # content key of the window's rows
    rows: int
    start: str | None  # the time column's first and last value, when windows follow it
    end: str | None
    level: float
    signals: dict[str, Any]
    # wall time of the window's measurement (its model passes and tests), seconds
    seconds: float | None = None

    def get(self, name: str) -> Any:
        """The result of the signal ``name`` (None: not measured on this window, or nothing)."""
        return self.signals.get(name)

    @property
    def tests(self) -> dict[str, Test]:
        """The alerting signals' tests, by signal name."""
        out = {}
        for name, result in self.signals.items():
            test = getattr(result, "test", None)
            if isinstance(test, Test):
                out[name] = test
        return out

    @property
    def alerts(self) -> tuple[str, ...]:
        return tuple(name for name, t in self.tests.items() if t.alert)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "a monitor window") -> WindowResult:
        """A window's result read strictly (``safeadapt.readback``): exit 2 naming the key; each
        signal's result typed by its signal's ``Result`` (a window written before the signals
        were plug-ins is read in its old layout, ``_flat_signals``)."""
        from safeadapt.readback import typed

        fix = "move the window file away, or give a new --out"
        if isinstance(data, dict) and "tests" in data:
            data = _flat_signals(data, where, fix)
        window = typed(cls, data, where, fix, nonfinite=True)
        signals = {}
        for name, raw in window.signals.items():
            signal = signal_for(name)
            if signal is None:
                raise DataError(f"{where}: signal {name!r} is not one this safeadapt knows; "
                                f"upgrade safeadapt, or {fix}.")  # fmt: skip
            signals[name] = None if raw is None else typed(
                signal.Result, raw, f"{where}: signal {name!r}", fix, nonfinite=True)  # fmt: skip
        return dataclasses.replace(window, signals=signals)

    def row(self) -> dict[str, Any]:
        """One flat row of ``monitor.csv``: identity, then each signal's columns in order."""
        out: dict[str, Any] = {"window": self.index, "rows": self.rows, "start": self.start,
                               "end": self.end, "level": self.level}  # fmt: skip
        for name, t in self.tests.items():
            out[f"{name}_stat"], out[f"{name}_p"] = t.statistic, t.p_value
            out[f"{name}_alert"] = t.alert
            if t.rows is not None:
                out[f"{name}_rows"] = t.rows
        for name, result in self.signals.items():
            out.update(signal_for(name).columns(result, self))
        out.update({"seconds": self.seconds, "alerts": " ".join(self.alerts)})
        return out


def ci_text(interval: tuple[float, float] | None) -> str:
    """`` [low, high]`` to follow an estimate in text, or nothing for a window without one."""
    return f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def measure_window(
    signals: list[Signal],
    pretrained: Tensor,
    adapted: Tensor,
    logits: Tensor,
    labels: np.ndarray,
    policy: AlertPolicy,
    *,
    index: int,
    key: str,
    seed: int,
    span: tuple[str | None, str | None] = (None, None),
) -> WindowResult:
    """Every signal of one window (features and logits already computed; ``signals`` fitted on
    the reference); ``labels`` holds -1 for the rows whose label has not come back. The window's
    tests share its Bonferroni budget: each runs at ``policy.level(alerting signals)``."""
    level = policy.level(max(1, sum(s.alerts for s in signals)))
    window = Window(index, pretrained, adapted, logits, np.asarray(labels), level, seed)
    return WindowResult(index=index, key=key, rows=len(logits), start=span[0], end=span[1],
                        level=level, signals={s.name: s.measure(window) for s in signals})  # fmt: skip


# the old layout's names: flag rates, estimates with their intervals
_LEGACY_RATES = {"ood_rate": "ood", "ood_rate_knn": "ood_knn"}


def _flat_signals(data: dict[str, Any], where: str, fix: str) -> dict[str, Any]:
    """A window written before the signals were plug-ins (fields per signal: ``tests``,
    ``ood``, ``atc`` ...), in today's layout; its values are then read as any window's."""
    known = {"index", "key", "rows", "start", "end", "level", "tests", "ood", "atc", "doc",
             "accuracy", "class_share", "set_size", "coverage", "label_share", "bbse", "bbse_ci",
             "ood_knn", "atc_ci", "doc_ci", "ood_more", "seconds"}  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataError(f"{where} has unknown key {unknown[0]!r}; {fix}.")
    tests = data.get("tests") if isinstance(data.get("tests"), dict) else {}
    more = data.get("ood_more") if isinstance(data.get("ood_more"), dict) else {}
    signals: dict[str, Any] = {}
    for name, test in tests.items():
        if name.startswith("embedding_"):
            signals[name] = {"test": test}
        elif name == "prediction":
            signals[name] = {"test": test, "class_share": data.get("class_share")}
        else:
            rate = data.get(_LEGACY_RATES.get(name, "")) or more.get(name[len("ood_rate_") :])
            signals[name] = {"test": test, "rate": rate}
    signals["accuracy"] = data.get("accuracy")
    for name in ("atc", "doc"):
        signals[name] = {"estimate": data.get(name), "ci": data.get(f"{name}_ci")}
    bbse = data.get("bbse")
    signals["bbse"] = None if bbse is None else {
        "label_share": data.get("label_share"), "estimate": bbse, "ci": data.get("bbse_ci")}  # fmt: skip
    size = data.get("set_size")
    signals["conformal"] = None if size is None else {"set_size": size,
                                                      "coverage": data.get("coverage")}  # fmt: skip
    identity = {k: data[k] for k in ("index", "key", "rows", "start", "end", "level", "seconds")
                if k in data}  # fmt: skip
    return {**identity, "signals": signals}

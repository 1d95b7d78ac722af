"""A monitor signal: one thing measured on every window against the export's reference, as a
plug-in registered like a safety family (``@register_signal(name, order, alerts)``).

A signal owns
- what it fits on the reference, once per monitor (``fit``),
- what it measures on a window (``measure``, returning its typed ``Result``, a frozen dataclass
  that ``WindowResult`` stores under the signal's name and reads back through :func:`signal_for`),
- its ``monitor.csv`` columns (``columns``) and its part of a window's summary line (``text``),
- where it shows in ``monitor.html``: an alerting signal gets a panel of its p-values under its
  ``label``; an accuracy estimate (``estimate``) a line in the estimates panel; a flag rate
  (``rate``) a line in the OOD-rate panel; each of them a column of the windows' table.

``plan`` says which of a registered signal's instances a monitor runs (none when the signal does
not apply to the export: the adapted embedding test of an LP export; several for the detectors
asked for by ``--more-detectors``). A window's Bonferroni budget is the number of alerting
signals planned; the plan with each signal's ``settings`` goes into the state header.

Adding a signal = one module in this package that registers itself + its test
(``docs/architecture.md``: the recipe).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from safeadapt._registry import Registry


@dataclass(frozen=True)
class Test:
    """One test of a window: its statistic, p-value, and whether it raised an alert."""

    statistic: float
    p_value: float
    alert: bool
    # the window's rows the test compared (the kernel tests subsample; None: every row)
    rows: int | None = None

    def __post_init__(self) -> None:  # numpy scalars from a signal's test: plain JSON values
        object.__setattr__(self, "statistic", float(self.statistic))
        object.__setattr__(self, "p_value", float(self.p_value))
        object.__setattr__(self, "alert", bool(self.alert))


@dataclass(frozen=True)
class Rate:
    """A detector's flag rate: the share, its Wilson interval, the reference rate."""

    rate: float
    ci_low: float
    ci_high: float
    reference_rate: float


@dataclass(frozen=True)
class Proportion:
    """A share of labelled rows (accuracy, conformal coverage) with its Wilson interval."""

    accuracy: float
    ci_low: float
    ci_high: float
    labelled: int


@dataclass(frozen=True)
class Estimate:
    """An accuracy estimated without labels, with its 95 % interval where the estimator has
    one (windows measured before the intervals existed: None)."""

    estimate: float
    ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class SignalEntry:
    """A signal as the state header records it: a change of any of these is another signal."""

    name: str
    alerts: bool
    settings: dict[str, Any]


@dataclass(frozen=True)
class Options:
    """What the person running the monitor chose that changes the plan."""

    more_detectors: tuple[str, ...] = ()
    # an export whose adaptation moved the backbone: also test the pretrained backbone's
    # features (a second backbone pass per window; --pretrained-rows opts in)
    pretrained_pass: bool = False


@dataclass(frozen=True)
class Window:
    """What a window's signals read: its rows' features (pretrained: a sample of them when the
    pass is sampled), the deployed model's logits, the labels (-1 where none came back), the
    level its tests run at and its seed."""

    index: int
    pretrained: Tensor
    adapted: Tensor
    logits: Tensor
    labels: np.ndarray
    level: float
    seed: int

    @cached_property
    def pred(self) -> np.ndarray:
        return self.logits.argmax(1).numpy()


class Signal:
    """A registered signal (see the module docstring). Class attributes set by
    :func:`register_signal`; an instance may carry its own ``name`` (one per detector)."""

    name: ClassVar[str] = ""
    order: ClassVar[float] = 0.0
    alerts: ClassVar[bool] = False
    Result: ClassVar[type] = object
    label: ClassVar[str] = ""  # panel title (alerting) or legend / summary text

    @classmethod
    def plan(cls, reference, options: Options) -> list[Signal]:
        """The instances a monitor of ``reference`` runs: one, unless the signal does not apply."""
        return [cls()] if cls.applies(reference) else []

    @classmethod
    def applies(cls, reference) -> bool:
        return True

    @classmethod
    def reading(cls, name: str) -> Signal | None:
        """The instance that stores its results under ``name``, if this signal's (reading a
        window back: its columns, text and panels come from it)."""
        return cls() if name == cls.name else None

    def settings(self) -> dict[str, Any]:
        """What the state header records of this signal beside its name (a change is a new
        signal)."""
        return {}

    def fit(self, reference, head: tuple[Tensor, Tensor]) -> None:
        """Anything fitted on the reference once per monitor (``head``: the deployed head's
        weight and bias)."""

    def measure(self, window: Window) -> Any:
        raise NotImplementedError

    def test(self, result: Any) -> Test | None:
        """The alerting test in ``result`` (alerting signals keep it as ``result.test``)."""
        return getattr(result, "test", None) if self.alerts and result is not None else None

    def columns(self, result: Any, window: Any) -> dict[str, Any]:
        """``monitor.csv``'s columns of ``result`` (``window``: the whole ``WindowResult``, for a
        column that reads another signal's result). Alerting signals get ``<name>_stat``,
        ``_p``, ``_alert`` (and ``_rows``) from ``WindowResult.row``."""
        return {}

    def text(self, result: Any) -> str | None:
        """This signal's part of the window's summary line."""
        return None

    def estimate(self, result: Any) -> Estimate | None:
        """An accuracy estimate drawn in the estimates panel and the table (None: not one)."""
        return None

    def rate(self, result: Any) -> Rate | None:
        """A flag rate drawn in the OOD-rate panel (None: not one)."""
        return None

    @property
    def column(self) -> str:
        """The header of its column in ``monitor.html``'s table of windows."""
        return self.label

    def describe(self) -> SignalEntry:
        """The plan entry the state header keeps."""
        import json

        return SignalEntry(self.name, self.alerts, json.loads(json.dumps(self.settings())))


class EstimateSignal(Signal):
    """A label-free accuracy estimate whose result is an :class:`Estimate`: its columns
    ``<name>``, ``_low``, ``_high``, its summary text, its line in the estimates panel."""

    Result = Estimate

    def columns(self, result: Estimate | None, window: Any) -> dict[str, Any]:
        return estimate_columns(self.name, result)

    def text(self, result: Estimate | None) -> str | None:
        return estimate_text(self.label, result)

    def estimate(self, result: Estimate | None) -> Estimate | None:
        return result


SIGNALS: Registry[type[Signal]] = Registry("monitor signal")


def register_signal(name: str, *, order: float, alerts: bool):
    """Register a :class:`Signal` subclass under ``name``; ``order`` places its columns, panels
    and summary text; ``alerts``: its test counts in the window's Bonferroni budget."""

    def decorator(cls: type[Signal]) -> type[Signal]:
        cls.name, cls.order, cls.alerts = name, order, alerts
        SIGNALS.register(name, order)(cls)
        return cls

    return decorator


def registered() -> list[type[Signal]]:
    """Every signal class, in order (each module of this package registers its own)."""
    import importlib
    import pkgutil
    from pathlib import Path

    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in ("base", "stats"):
            importlib.import_module(f"{__package__}.{module.name}")
    return [SIGNALS.get(name) for name in SIGNALS.in_order()]


def plan(reference, options: Options) -> list[Signal]:
    """The signals a monitor of ``reference`` runs, in order."""
    return [s for cls in registered() for s in cls.plan(reference, options)]


def signal_for(name: str) -> Signal | None:
    """The signal that stored a result under ``name`` (None: no signal of this release)."""
    for cls in registered():
        found = cls.reading(name)
        if found is not None:
            return found
    return None


def estimate_columns(prefix: str, result: Estimate | None) -> dict[str, Any]:
    """``<prefix>``, ``<prefix>_low``, ``<prefix>_high``: an estimate's ``monitor.csv`` columns."""
    ci = result.ci if result else None
    return {prefix: result.estimate if result else None,
            f"{prefix}_low": ci[0] if ci else None, f"{prefix}_high": ci[1] if ci else None}  # fmt: skip


def estimate_text(label: str, result: Estimate | None) -> str | None:
    if result is None:
        return None
    ci = f" [{result.ci[0]:.3f}, {result.ci[1]:.3f}]" if result.ci else ""
    return f"{label} {result.estimate:.3f}{ci}"

"""Prediction drift: black-box shift detection (Lipton et al., ICML 2018), the window's
predicted-class counts against the reference's (``stats.prediction_drift``)."""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Signal, Test, Window, register_signal


@dataclass(frozen=True)
class PredictionResult:
    test: Test
    class_share: tuple[float, ...]  # the window's predicted-class shares


@register_signal("prediction", order=30, alerts=True)
class PredictionDrift(Signal):
    label = "prediction drift (predicted-class shares, chi-square)"
    Result = PredictionResult

    def fit(self, reference, head) -> None:
        self._predictions, self._classes = reference.predictions, len(reference.label_names)

    def measure(self, window: Window) -> PredictionResult:
        drift, share = stats.prediction_drift(self._predictions, window.pred, self._classes)
        return PredictionResult(Test(drift.statistic, drift.p_value,
                                     drift.p_value <= window.level), share)  # fmt: skip

"""Accuracy on the window's labelled rows (labels that came back), with its Wilson interval:
the truth the label-free estimates are read against."""

from __future__ import annotations

from typing import Any

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Proportion, Signal, Window, register_signal


@register_signal("accuracy", order=70, alerts=False)
class LabelledAccuracy(Signal):
    label = "accuracy (labels)"
    Result = Proportion

    def measure(self, window: Window) -> Proportion | None:
        return stats.accuracy(window.pred, window.labels)

    def columns(self, result: Proportion | None, window) -> dict[str, Any]:
        return {"accuracy": result.accuracy if result else None,
                "accuracy_low": result.ci_low if result else None,
                "accuracy_high": result.ci_high if result else None,
                "labelled": result.labelled if result else 0}  # fmt: skip

    def text(self, result: Proportion | None) -> str | None:
        if result is None:
            return None
        return (f"accuracy {result.accuracy:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}] "
                f"on {result.labelled} labelled")  # fmt: skip

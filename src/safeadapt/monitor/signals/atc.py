"""Average Thresholded Confidence (Garg et al., ICLR 2022): the share of the window above the
negative-entropy threshold at which the reference's share equals its accuracy, with a 95 %
interval where ATC's assumption holds (``stats.estimate_interval``)."""

from __future__ import annotations

from typing import Any

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Estimate, EstimateSignal, Window, register_signal


@register_signal("atc", order=80, alerts=False)
class ATC(EstimateSignal):
    label = "ATC"

    def fit(self, reference, head) -> None:
        self._temperature, self._threshold = reference.temperature, reference.atc_threshold
        self._slips = reference.slips()[0]

    def measure(self, window: Window) -> Estimate:
        scores = stats.negative_entropy(window.logits, self._temperature)
        atc = stats.atc_estimate(scores, self._threshold)
        return Estimate(atc, stats.estimate_interval(atc, self._slips, len(window.pred)))

    def columns(self, result: Estimate | None, window) -> dict[str, Any]:
        truth = window.get("accuracy")
        error = result.estimate - truth.accuracy if result and truth else None
        return {**super().columns(result, window), "atc_error": error}

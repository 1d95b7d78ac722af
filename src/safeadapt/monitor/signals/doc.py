"""Difference of confidences (Guillory et al., ICCV 2021): the reference's accuracy moved by the
change of the temperature-scaled mean confidence, with a 95 % interval where its assumption holds
(``stats.estimate_interval``)."""

from __future__ import annotations

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Estimate, EstimateSignal, Window, register_signal


@register_signal("doc", order=90, alerts=False)
class DoC(EstimateSignal):
    label = "DoC"

    def fit(self, reference, head) -> None:
        self._temperature = reference.temperature
        self._confidence, self._accuracy = reference.confidence_mean, reference.accuracy
        self._slips = reference.slips()[1]

    def measure(self, window: Window) -> Estimate:
        conf = stats.confidence(window.logits, self._temperature)
        doc = stats.doc_estimate(conf, self._confidence, self._accuracy)
        return Estimate(doc, stats.estimate_interval(doc, self._slips, len(window.pred)))

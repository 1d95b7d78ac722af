"""Black-box shift estimation (Lipton et al., ICML 2018): the window's label shares from its
predicted-class shares and the reference's confusion matrix, and the accuracy they imply -- the
estimate that holds where ATC fails (a label shift) -- with a bootstrap 95 % interval
(``stats.label_shift``, ``stats.label_shift_interval``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import (
    Estimate,
    Signal,
    Window,
    estimate_columns,
    estimate_text,
    register_signal,
)


@dataclass(frozen=True)
class LabelShiftResult:
    label_share: tuple[float, ...]  # the window's estimated label shares
    estimate: float
    ci: tuple[float, float] | None  # None above stats.BBSE_MAX_CLASSES classes


@register_signal("bbse", order=100, alerts=False)
class LabelShift(Signal):
    label = "under label shift (BBSE)"
    Result = LabelShiftResult

    def fit(self, reference, head) -> None:
        self._pred, self._labels = reference.predictions, np.asarray(reference.labels)
        self._classes = len(reference.label_names)

    def settings(self) -> dict[str, Any]:
        return {"draws": stats.BBSE_DRAWS}

    def measure(self, window: Window) -> LabelShiftResult:
        k = self._classes
        share = np.bincount(window.pred, minlength=k) / max(len(window.pred), 1)
        label_share, bbse = stats.label_shift(self._pred, self._labels, share, k)
        ci = stats.label_shift_interval(self._pred, self._labels, window.pred, k, bbse,
                                        window.seed)  # fmt: skip
        return LabelShiftResult(label_share, bbse, ci)

    @property
    def column(self) -> str:
        return "BBSE"

    def estimate(self, result: LabelShiftResult | None) -> Estimate | None:
        return Estimate(result.estimate, result.ci) if result else None

    def columns(self, result: LabelShiftResult | None, window) -> dict[str, Any]:
        return estimate_columns("bbse", self.estimate(result))

    def text(self, result: LabelShiftResult | None) -> str | None:
        return estimate_text(self.label, self.estimate(result))

"""Conformal prediction sets (split conformal, LAC) calibrated on the reference at
``COVERAGE``: the window's mean set size needs no label; their coverage of the labelled rows
(Wilson interval) says whether the guarantee holds (``stats.conformal``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Proportion, Signal, Window, register_signal

COVERAGE = 0.9


@dataclass(frozen=True)
class ConformalResult:
    set_size: float
    coverage: Proportion | None  # None without labels


@register_signal("conformal", order=110, alerts=False)
class ConformalSets(Signal):
    label = "conformal sets"
    Result = ConformalResult

    def fit(self, reference, head) -> None:
        self._logits, self._labels = reference.logits, np.asarray(reference.labels)

    def settings(self) -> dict[str, Any]:
        return {"coverage": COVERAGE}

    def measure(self, window: Window) -> ConformalResult:
        size, cover = stats.conformal(self._logits, self._labels, window.logits, window.labels,
                                      COVERAGE)  # fmt: skip
        return ConformalResult(size, cover)

    def columns(self, result: ConformalResult | None, window) -> dict[str, Any]:
        cover = result.coverage if result else None
        return {"set_size": result.set_size if result else None,
                "coverage": cover.accuracy if cover else None,
                "coverage_low": cover.ci_low if cover else None,
                "coverage_high": cover.ci_high if cover else None}  # fmt: skip

    def text(self, result: ConformalResult | None) -> str | None:
        cover = result.coverage if result else None
        if cover is None:
            return None
        return (
            f"{COVERAGE * 100:.0f} % conformal sets cover {cover.accuracy:.3f} "
            f"[{cover.ci_low:.3f}, {cover.ci_high:.3f}]"
        )

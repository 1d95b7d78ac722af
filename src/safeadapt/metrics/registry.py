"""The metric registry (kept apart so metric modules can import it without cycles)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from safeadapt._registry import Registry

PredictionMetric = Callable[[Tensor, Tensor], float]
METRICS: Registry[PredictionMetric] = Registry("metric")


def register_metric(name: str) -> Callable[[PredictionMetric], PredictionMetric]:
    return METRICS.register(name)

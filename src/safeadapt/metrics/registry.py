"""The metric registry (kept apart so metric modules can import it without cycles)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from safeadapt._registry import Registry

# a metric returns a float, or a mapping of floats by class index (stored as ``name:<class>``)
PredictionMetric = Callable[[Tensor, Tensor], float | dict[str, float]]
METRICS: Registry[PredictionMetric] = Registry("metric")


def register_metric(name: str) -> Callable[[PredictionMetric], PredictionMetric]:
    return METRICS.register(name)

"""Metrics: pure functions, registered by name. A *prediction metric* maps ``(logits (N, K),
labels (N,))`` of one split to a float; ``safeadapt.evaluation.evaluate`` runs every requested one
on ID test and each OOD split. Adding a metric is one registered function in a module here."""

from safeadapt.metrics import calibration, classification  # noqa: F401  (registration)
from safeadapt.metrics.registry import METRICS, register_metric

__all__ = ["METRICS", "register_metric"]

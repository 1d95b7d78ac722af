"""Effective robustness (Taori et al. 2020): OOD accuracy above the ID -> OOD trend of a baseline.

The trend is a straight line through baseline models' (ID, OOD) accuracies on the probit scale
(``Phi^-1``), where such trends are close to linear. Here the baseline family is linear probes of
the same backbone over the regularisation grid (cheap: cached features). A run's effective
robustness on a split is ``OOD acc - Phi(slope * Phi^-1(ID acc) + intercept)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from safeadapt.errors import InvalidConfig

_CLIP = 1e-4


def _probit(p) -> np.ndarray:
    return norm.ppf(np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP))


@dataclass(frozen=True)
class Trend:
    slope: float
    intercept: float
    n_points: int

    def predict(self, id_accuracy: float) -> float:
        return float(norm.cdf(self.slope * _probit(id_accuracy) + self.intercept))


def fit_trend(id_accuracy: Sequence[float], ood_accuracy: Sequence[float]) -> Trend:
    """Least-squares line in probit space. With points at a single ID accuracy (or one point)
    the slope is fixed to 1 (OOD = ID shifted), which is stated by ``n_points``."""
    x, y = _probit(id_accuracy), _probit(ood_accuracy)
    if len(x) != len(y) or len(x) == 0:
        raise InvalidConfig("fit_trend needs as many ID as OOD accuracies, at least one of each.")
    if len(x) < 2 or np.ptp(x) < 1e-6:
        return Trend(1.0, float(np.mean(y - x)), len(x))
    slope, intercept = np.polyfit(x, y, 1)
    return Trend(float(slope), float(intercept), len(x))


def effective_robustness(id_accuracy: float, ood_accuracy: float, trend: Trend) -> float:
    return float(ood_accuracy - trend.predict(id_accuracy))

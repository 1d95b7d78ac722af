"""Concept forgetting (Mukhoti et al. 2023): what the backbone knew about *other* tasks.

For each reference task, the linear-probe test accuracy of the adapted backbone's features minus
that of the original backbone's features. Negative = forgotten. The probes are fitted the same way
(``safeadapt.linear.fit_linear_probe``, C chosen on the reference task's validation split).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from safeadapt.errors import InvalidConfig


@dataclass(frozen=True)
class TaskForgetting:
    """A reference task's probe accuracy before and after adaptation."""

    before: float
    after: float
    delta: float  # after - before


@dataclass(frozen=True)
class ForgettingReport:
    """Per reference task, before / after / delta, and the mean delta."""

    tasks: dict[str, TaskForgetting]
    mean_delta: float


def forgetting_report(before: Mapping[str, float], after: Mapping[str, float]) -> ForgettingReport:
    """Each reference task's accuracy before and after, and the mean of after - before."""
    if set(before) != set(after):
        raise InvalidConfig(
            f"forgetting_report: reference tasks differ: before {sorted(before)}, after {sorted(after)}."
        )
    if not before:
        raise InvalidConfig("forgetting_report needs at least one reference task.")
    per = {
        k: TaskForgetting(float(before[k]), float(after[k]), float(after[k] - before[k]))
        for k in before
    }
    return ForgettingReport(per, float(np.mean([v.delta for v in per.values()])))

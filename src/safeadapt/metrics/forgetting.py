"""Concept forgetting (Mukhoti et al. 2023): what the backbone knew about *other* tasks.

For each reference task, the linear-probe test accuracy of the adapted backbone's features minus
that of the original backbone's features. Negative = forgotten. The probes are fitted the same way
(``safeadapt.linear.fit_linear_probe``, C chosen on the reference task's validation split).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from safeadapt.errors import InvalidConfig


def forgetting_report(
    before: Mapping[str, float], after: Mapping[str, float]
) -> dict[str, dict[str, float] | float]:
    """``{task: {before, after, delta}}`` plus ``mean_delta`` (after - before, averaged)."""
    if set(before) != set(after):
        raise InvalidConfig(
            f"forgetting_report: reference tasks differ: before {sorted(before)}, after {sorted(after)}."
        )
    if not before:
        raise InvalidConfig("forgetting_report needs at least one reference task.")
    per = {
        k: {
            "before": float(before[k]),
            "after": float(after[k]),
            "delta": float(after[k] - before[k]),
        }
        for k in before
    }
    return {"tasks": per, "mean_delta": float(np.mean([v["delta"] for v in per.values()]))}

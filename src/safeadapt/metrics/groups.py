"""Group metrics: per-group accuracy, worst-group accuracy and gap, and fairness differences.

Computed with fairlearn's ``MetricFrame`` (and its demographic-parity / equalised-odds
functions) rather than re-written. For more than two classes the fairness differences are taken
one-vs-rest per class and the largest is reported (``*_max_over_classes``).

Cells are group x true class (Sagawa et al. 2020's "groups" in Waterbirds / CelebA): the worst
cell's accuracy and the best-worst cell gap; for binary tasks also the largest difference in
true-positive rate between groups (Wang & Russakovsky 2023's bias metric).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safeadapt.errors import DataError
from safeadapt.results.safety import absent


@dataclass(frozen=True)
class GroupAccuracy:
    accuracy: float
    n: int


@dataclass(frozen=True)
class GroupReport:
    """One split's group metrics. Binary tasks carry the TPR per group and its gap and the
    demographic-parity / equalised-odds differences; other tasks the largest one-vs-rest
    differences over classes."""

    by_group: dict[str, GroupAccuracy]
    worst_group: str
    worst_group_accuracy: float
    accuracy_gap: float
    by_cell: dict[str, GroupAccuracy]  # cells: "<group>|<true class>"
    worst_cell: str
    worst_cell_accuracy: float
    cell_gap: float
    tpr_by_group: dict[str, float] | None = absent()
    tpr_gap: float | None = absent()
    demographic_parity_difference: float | None = absent()
    equalized_odds_difference: float | None = absent()
    demographic_parity_difference_max_over_classes: float | None = absent()
    equalized_odds_difference_max_over_classes: float | None = absent()


@dataclass(frozen=True)
class _Breakdown:
    """Accuracy per value of one sensitive feature (groups, or group x class cells)."""

    by: dict[str, GroupAccuracy]
    worst: str
    worst_accuracy: float
    gap: float  # best minus worst


def _breakdown(y_true: np.ndarray, y_pred: np.ndarray, feature: np.ndarray) -> _Breakdown:
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    frame = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred,
                        sensitive_features=feature)  # fmt: skip
    accuracy = frame.by_group  # one metric: a Series indexed by the feature's values
    names, counts = np.unique(feature, return_counts=True)
    size = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return _Breakdown(
        by={str(g): GroupAccuracy(float(a), int(size[str(g)])) for g, a in accuracy.items()},
        worst=str(accuracy.idxmin()),
        worst_accuracy=float(frame.group_min()),
        gap=float(frame.difference(method="between_groups")),
    )


def group_report(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> GroupReport:
    """Per-group accuracy and size, worst-group accuracy, the best-worst gap, and
    demographic-parity / equalised-odds differences of the predictions across groups."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
    )

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    groups = np.asarray(groups).astype(str)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise DataError(
            f"group_report: y_true ({len(y_true)}), y_pred ({len(y_pred)}) and groups "
            f"({len(groups)}) must have the same length."
        )
    if len(np.unique(groups)) < 2:
        raise DataError("group_report needs at least two groups; the split has one.")
    group = _breakdown(y_true, y_pred, groups)
    cell = _breakdown(y_true, y_pred, np.char.add(np.char.add(groups, "|"), y_true.astype(str)))
    fairness: dict[str, float] = {}
    tpr_by_group = tpr_gap = None
    classes = np.unique(np.concatenate([y_true, y_pred]))
    if len(classes) <= 2:
        from fairlearn.metrics import true_positive_rate

        positive = classes.max()
        yt, yp = (y_true == positive).astype(int), (y_pred == positive).astype(int)
        if yt.any():
            tpr = MetricFrame(metrics=true_positive_rate, y_true=yt, y_pred=yp,
                              sensitive_features=groups)  # fmt: skip
            tpr_by_group = {str(g): float(v) for g, v in tpr.by_group.items()}
            tpr_gap = float(tpr.difference(method="between_groups"))
        fairness = {
            "demographic_parity_difference": float(
                demographic_parity_difference(yt, yp, sensitive_features=groups)
            ),
            "equalized_odds_difference": float(
                equalized_odds_difference(yt, yp, sensitive_features=groups)
            ),
        }
    else:
        dp, eo = [], []
        for c in classes:
            yt, yp = (y_true == c).astype(int), (y_pred == c).astype(int)
            dp.append(demographic_parity_difference(yt, yp, sensitive_features=groups))
            eo.append(equalized_odds_difference(yt, yp, sensitive_features=groups))
        fairness = {
            "demographic_parity_difference_max_over_classes": float(np.nanmax(dp)),
            "equalized_odds_difference_max_over_classes": float(np.nanmax(eo)),
        }
    return GroupReport(
        by_group=group.by,
        worst_group=group.worst,
        worst_group_accuracy=group.worst_accuracy,
        accuracy_gap=group.gap,
        by_cell=cell.by,
        worst_cell=cell.worst,
        worst_cell_accuracy=cell.worst_accuracy,
        cell_gap=cell.gap,
        tpr_by_group=tpr_by_group,
        tpr_gap=tpr_gap,
        **fairness,
    )

"""Group metrics: per-group accuracy, worst-group accuracy and gap, and fairness differences.

Computed with fairlearn's ``MetricFrame`` (and its demographic-parity / equalised-odds
functions) rather than re-written. For more than two classes the fairness differences are taken
one-vs-rest per class and the largest is reported (``*_max_over_classes``).

Cells are group x true class (Sagawa et al. 2020's "groups" in Waterbirds / CelebA): the worst
cell's accuracy and the best-worst cell gap; for binary tasks also the largest difference in
true-positive rate between groups (Wang & Russakovsky 2023's bias metric).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeadapt.errors import DataError


def group_report(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Per-group accuracy and size, worst-group accuracy, the best-worst gap, and
    demographic-parity / equalised-odds differences of the predictions across groups."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
    )
    from sklearn.metrics import accuracy_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    groups = np.asarray(groups).astype(str)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise DataError(
            f"group_report: y_true ({len(y_true)}), y_pred ({len(y_pred)}) and groups "
            f"({len(groups)}) must have the same length."
        )
    if len(np.unique(groups)) < 2:
        raise DataError("group_report needs at least two groups; the split has one.")
    frame = MetricFrame(
        metrics={"accuracy": accuracy_score, "n": count},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    by_group = {
        str(g): {"accuracy": float(row["accuracy"]), "n": int(row["n"])}
        for g, row in frame.by_group.iterrows()
    }
    out: dict[str, Any] = {
        "by_group": by_group,
        "worst_group": str(frame.by_group["accuracy"].idxmin()),
        "worst_group_accuracy": float(frame.group_min()["accuracy"]),
        "accuracy_gap": float(frame.difference(method="between_groups")["accuracy"]),
    }
    cells = np.char.add(np.char.add(groups, "|"), y_true.astype(str))
    cell_frame = MetricFrame(
        metrics={"accuracy": accuracy_score, "n": count},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=cells,
    )
    out["by_cell"] = {
        str(c): {"accuracy": float(row["accuracy"]), "n": int(row["n"])}
        for c, row in cell_frame.by_group.iterrows()
    }
    out["worst_cell"] = str(cell_frame.by_group["accuracy"].idxmin())
    out["worst_cell_accuracy"] = float(cell_frame.group_min()["accuracy"])
    out["cell_gap"] = float(cell_frame.difference(method="between_groups")["accuracy"])
    classes = np.unique(np.concatenate([y_true, y_pred]))
    if len(classes) <= 2:
        from fairlearn.metrics import true_positive_rate

        positive = classes.max()
        yt = (y_true == positive).astype(int)
        if yt.any():
            tpr = MetricFrame(
                metrics=true_positive_rate,
                y_true=yt,
                y_pred=(y_pred == positive).astype(int),
                sensitive_features=groups,
            )
            out["tpr_by_group"] = {str(g): float(v) for g, v in tpr.by_group.items()}
            out["tpr_gap"] = float(tpr.difference(method="between_groups"))
        positive = classes.max()
        yt, yp = (y_true == positive).astype(int), (y_pred == positive).astype(int)
        out["demographic_parity_difference"] = float(
            demographic_parity_difference(yt, yp, sensitive_features=groups)
        )
        out["equalized_odds_difference"] = float(
            equalized_odds_difference(yt, yp, sensitive_features=groups)
        )
    else:
        dp, eo = [], []
        for c in classes:
            yt, yp = (y_true == c).astype(int), (y_pred == c).astype(int)
            dp.append(demographic_parity_difference(yt, yp, sensitive_features=groups))
            eo.append(equalized_odds_difference(yt, yp, sensitive_features=groups))
        out["demographic_parity_difference_max_over_classes"] = float(np.nanmax(dp))
        out["equalized_odds_difference_max_over_classes"] = float(np.nanmax(eo))
    return out

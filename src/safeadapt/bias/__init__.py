"""Audit and curate finetuning data with a group / sensitive attribute.

``audit`` reports group counts and shares, the label rate per group, the label-attribute
association (Cramer's V, mutual information, conditional probabilities) and flags
under-represented groups and strong spurious correlation.

``curate`` builds a new finetuning set -- by resampling (``mode="resample"``) or as sample weights
(``mode="reweight"``) -- with a chosen label-attribute correlation (binary label x binary group,
Wang & Russakovsky, ICCV 2023: the two "aligned" cells get a share ``(1 + rho) / 4`` each, the
other two ``(1 - rho) / 4``; rho = 1 fully correlated, 0 independent, -1 anti-correlated) or chosen
group shares (label mix kept within each group). Seeded; the original split is never modified;
the report says what was dropped or duplicated.

Wang & Russakovsky's experiment end to end is ``examples/overwriting_bias.py``: ordinary studies
of the built-in ``coloured`` task (``safeadapt.data.builtin.coloured``), which curates with ``curate``
(``safeadapt.data.curation``, re-exported here).
"""

from __future__ import annotations

import numpy as np

from safeadapt.data.curation import curate, phi, split_groups
from safeadapt.data.task import Split
from safeadapt.results.audit import AuditReport, GroupRow


def audit(
    split: Split,
    label_names: tuple[str, ...] | None = None,
    min_share: float = 0.1,
    strong: float = 0.3,
) -> AuditReport:
    """Representation and label-attribute association of ``split`` (see the module docstring)."""
    from scipy.stats.contingency import association
    from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

    groups = split_groups(split)
    labels = np.asarray(split.labels)
    names = label_names or tuple(str(c) for c in range(int(labels.max()) + 1))
    gs = [str(g) for g in sorted(np.unique(groups))]
    cs = sorted(np.unique(labels).tolist())
    table = np.array([[np.sum((groups == g) & (labels == c)) for c in cs] for g in gs])
    n = len(labels)
    per_group = {}
    for i, g in enumerate(gs):
        total = table[i].sum()
        per_group[g] = GroupRow(
            int(total),
            float(total / n),
            {names[c]: float(table[i, j] / total) for j, c in enumerate(cs)},
        )
    p_group_given_label = {
        names[c]: {g: float(table[i, j] / table[:, j].sum()) for i, g in enumerate(gs)}
        for j, c in enumerate(cs)
    }
    v = float(association(table, method="cramer")) if min(table.shape) > 1 else 0.0
    flags = [
        f"group {g!r} is under-represented ({row.share:.1%} < {min_share:.0%})"
        for g, row in per_group.items()
        if row.share < min_share
    ]
    if v >= strong:
        flags.append(
            f"label and group are strongly associated (Cramer's V {v:.2f} >= {strong}): a model "
            "can learn the group as a shortcut for the label"
        )
    return AuditReport(
        n=n,
        groups=per_group,
        p_group_given_label=p_group_given_label,
        cramers_v=v,
        mutual_information_nats=float(mutual_info_score(groups, labels)),
        normalized_mutual_information=float(normalized_mutual_info_score(groups, labels)),
        flags=tuple(flags),
        phi={g: phi(labels, groups, g) for g in gs} if len(gs) == 2 and len(cs) == 2 else None,
    )


__all__ = ["AuditReport", "audit", "curate", "phi"]

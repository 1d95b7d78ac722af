"""The study table's columns, for the HTML report and the console: the built-in scores that
have a column (``safeadapt.results.SCORES``), one column per OOD split, then every registered
safety family's scores (``safeadapt.safety``)."""

from __future__ import annotations

from typing import NamedTuple

from safeadapt.results import SCORES, StudySummary
from safeadapt.safety import score_columns


class Column(NamedTuple):
    key: str
    header: str
    higher_is_better: bool | None  # None: no best (a description, not a goal)
    fmt: str


# the built-in columns, in table order, from the scores' own metadata
COLUMNS: list[Column] = [
    Column(key, spec.header, spec.higher_is_better, spec.fmt)
    for key, spec in SCORES.items()
    if spec.header is not None
]
_FIRST = 4  # selection and test accuracies come before the OOD splits' columns
_LAST = 2  # cost columns come after the safety families'


def table_columns(summary: StudySummary) -> list[Column]:
    """The columns some variant of ``summary`` has a score for."""
    ood_cols = [
        Column(f"accuracy:{s}", f"{s.removeprefix('ood:')} acc", True, ".3f")
        for s in summary.ood_splits()
    ]
    families = [Column(*c) for c in score_columns()]
    cols = COLUMNS[:_FIRST] + ood_cols + COLUMNS[_FIRST:-_LAST] + families + COLUMNS[-_LAST:]
    return [c for c in cols if any(c.key in v.scores for v in summary.variants)]

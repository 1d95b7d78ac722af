"""The study table's columns, for the HTML report and the console: the built-in scores, one
column per OOD split, then every registered safety family's scores (``safeadapt.safety``)."""

from __future__ import annotations

from typing import Any

from safeadapt.safety import score_columns

# column key -> (header, higher is better or None for "no best", format)
COLUMNS: list[tuple[str, str, bool | None, str]] = [
    ("val_accuracy", "ID-val acc (selection)", True, ".3f"),
    ("ood_val_accuracy", "OOD-val acc (selection)", True, ".3f"),
    ("id_accuracy", "ID acc", True, ".3f"),
    ("ood_accuracy", "OOD acc (mean)", True, ".3f"),
    ("ece", "ECE", False, ".3f"),
    ("nll", "NLL", False, ".3f"),
    ("fit_seconds", "fit s", False, ".1f"),
    ("trainable_parameters", "trainable params", None, ",.0f"),
]


def table_columns(summary: dict[str, Any]) -> list[tuple[str, str, bool | None, str]]:
    """``(key, header, higher is better, format)`` of the columns some variant has a score for."""
    ood_cols = [
        (f"accuracy:{s}", f"{s.removeprefix('ood:')} acc", True, ".3f")
        for s in summary["splits"]
        if s.startswith("ood:")
    ]
    cols = COLUMNS[:4] + ood_cols + COLUMNS[4:-2] + score_columns() + COLUMNS[-2:]
    return [c for c in cols if any(c[0] in v["scores"] for v in summary["variants"])]

"""Safety families, one module each, registered in ``FAMILIES`` (see ``safety.base``), and the
suite that runs them (``evaluate_safety``, ``SafetyConfig``).

Adding a family = one module here that registers itself + its test; the study config
(``safety: {<family>: {...}}``), the report's columns, figures and facts, the intervals,
``results.csv`` and ``safeadapt list`` read the registry. ``FAMILY_MODULES`` is the order of the
report's columns and figures (a module imported by an earlier one registers no earlier than it).
"""

import importlib

from safeadapt.safety.base import (
    FAMILIES,
    EvalContext,
    Family,
    Score,
    family,
    measure_families,
    register_family,
    resolve_families,
    run_facts,
    run_intervals,
    run_scores,
    score_columns,
)
from safeadapt.safety.suite import SafetyConfig, evaluate_safety

FAMILY_MODULES = (
    "effective",
    "calibration",
    "adversarial",
    "corruption",
    "forgetting",
    "detection",
    "distortion",
    "groups",
    "selective",
    "conformal",
    "flips",
)
for _module in FAMILY_MODULES:  # each module registers its family
    importlib.import_module(f"safeadapt.safety.{_module}")

__all__ = [
    "FAMILIES",
    "EvalContext",
    "Family",
    "SafetyConfig",
    "Score",
    "evaluate_safety",
    "family",
    "measure_families",
    "register_family",
    "resolve_families",
    "run_facts",
    "run_intervals",
    "run_scores",
    "score_columns",
]

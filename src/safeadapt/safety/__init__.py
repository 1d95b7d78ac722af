"""Safety families, one module each, registered in ``FAMILIES`` (see ``safety.base``), and the
suite that runs them (``evaluate_safety``, ``SafetyConfig``).

Adding a family = one module here that registers itself (``@register_family(name, order)``) +
its test: every module of this package is imported here, and the study config
(``safety: {<family>: {...}}``), the report's columns, figures and facts, the intervals,
``results.csv`` and ``safeadapt list`` read the registry. ``order`` places the family's columns
and figures.
"""

import importlib
import pkgutil

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
from safeadapt.safety.suite import SafetyConfig, SafetyEvaluation, evaluate_safety

for _module in pkgutil.iter_modules(__path__):  # each family module registers its family
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "FAMILIES",
    "EvalContext",
    "Family",
    "SafetyConfig",
    "Score",
    "SafetyEvaluation",
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

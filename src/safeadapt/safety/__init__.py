"""Safety families, one module each, registered in ``FAMILIES`` (see ``safety.base``), and the
suite that runs them (``evaluate_safety``, ``SafetyConfig``).

Adding a family = one module here that registers itself + its test; the study config
(``safety: {<family>: {...}}``), the report's columns, figures and facts, the intervals,
``results.csv`` and ``safeadapt list`` read the registry. The import order below is the order of
the report's columns.
"""

from safeadapt.safety import (  # noqa: F401  (each module registers its family)
    adversarial,
    calibration,
    conformal,
    corruption,
    detection,
    distortion,
    effective,
    flips,
    forgetting,
    groups,
    selective,
)
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

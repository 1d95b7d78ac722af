"""Safety families, one module each, registered in ``FAMILIES`` (see ``safety.base``).

Adding a family = one module here that registers itself + its test; the study config
(``safety: {<family>: {...}}``), the report's columns and figures, ``results.csv`` and
``safeadapt list`` read the registry.
"""

from safeadapt.safety import (  # noqa: F401  (each module registers its family)
    conformal,
    detection,
    distortion,
    flips,
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
    run_scores,
    score_columns,
)

__all__ = [
    "FAMILIES",
    "EvalContext",
    "Family",
    "Score",
    "family",
    "measure_families",
    "register_family",
    "resolve_families",
    "run_scores",
    "score_columns",
]

"""Typed results: what a run and a study report, as frozen dataclasses.

JSON appears only at the store boundary: ``RunRecord.to_json()`` / ``from_json()`` for a run's
``record.json``, ``StudySummary.to_json()`` / ``from_json()`` for ``summary.json``. Both carry
``schema`` (``SCHEMA``); a file without it was written before the schema had a number (version
0, the same layout) and reads the same way. Everything between the store and the screen --
recommend, checks, export, the writers, the trackers, the report -- takes these objects.

Parts whose layout belongs to a plug-in stay mappings, owned and read by that plug-in: a run's
``config`` (the protocol's config), ``info`` (what the protocol reports about its fit) and
``safety`` (one entry per safety family, read through the family's ``scores`` / ``facts``).

Each built-in score's metadata (label, direction, format) is declared once, in ``SCORES``; the
safety families declare theirs on the family (``Family.SCORES``).
"""

from safeadapt.results._json import SCHEMA
from safeadapt.results.run import Cost, CostPart, RunKey, RunRecord, SplitMetrics
from safeadapt.results.scores import SCORES, ScoreSpec
from safeadapt.results.study import (
    CheckReport,
    CheckResult,
    Comparison,
    DisagreementExample,
    Disagreements,
    DisagreementSide,
    PairedTest,
    RuleChoice,
    ScoreSummary,
    SplitDisagreement,
    StudySummary,
    VariantSummary,
    Verdict,
)

__all__ = [
    "SCHEMA",
    "SCORES",
    "CheckReport",
    "CheckResult",
    "Comparison",
    "DisagreementExample",
    "DisagreementSide",
    "Disagreements",
    "Cost",
    "CostPart",
    "PairedTest",
    "RuleChoice",
    "RunKey",
    "RunRecord",
    "ScoreSpec",
    "ScoreSummary",
    "SplitDisagreement",
    "SplitMetrics",
    "StudySummary",
    "VariantSummary",
    "Verdict",
]

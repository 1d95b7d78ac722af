"""What each built-in score means: its label, direction, format and table column, declared once
(the safety families declare theirs on the family: ``Family.SCORES``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreSpec:
    """What a score means: its ``label`` in sentences, its ``header`` in the study table (none:
    not a column), whether higher is better (``None``: no best, a description not a goal) and
    its number format."""

    label: str
    higher_is_better: bool | None
    fmt: str = ".3f"
    header: str | None = None


# the run-level scores every study has, besides accuracy:ood:<split> and the safety families'
# (the names ``checks:`` may bound; ``run_scores`` returns exactly these, tested). Order: the
# scores' order in a variant's summary.
SCORES: dict[str, ScoreSpec] = {
    "val_accuracy": ScoreSpec("ID-val accuracy", True, header="ID-val acc (selection)"),
    "ood_val_accuracy": ScoreSpec(
        "OOD-val accuracy (mean)", True, header="OOD-val acc (selection)"
    ),
    "val_ece": ScoreSpec("ID-val ECE", False),
    "id_accuracy": ScoreSpec("ID test accuracy", True, header="ID acc"),
    "ood_accuracy": ScoreSpec("OOD test accuracy (mean)", True, header="OOD acc (mean)"),
    "ece": ScoreSpec("ID test ECE", False, header="ECE"),
    "nll": ScoreSpec("ID test NLL", False, header="NLL"),
    "brier": ScoreSpec("ID test Brier score", False),
    "fit_seconds": ScoreSpec("fit wall time (s)", False, ".1f", header="fit s"),
    "eval_seconds": ScoreSpec("evaluation wall time (s)", False, ".1f"),
    "trainable_parameters": ScoreSpec(
        "trainable parameters", None, ",.0f", header="trainable params"
    ),
    "peak_rss_mb": ScoreSpec("peak resident memory (MB)", False, ".0f"),
}

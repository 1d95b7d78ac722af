"""A study's runs as variants: each run's flat scores (the built-in ones, one accuracy per OOD
split, every safety family's) and each variant's (protocol + grid point) summary over its seeds
with its intervals, kept beside its per-example outputs while the verdict is made."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.metrics.intervals import contain, t_interval
from safeadapt.results import SCORES, RunRecord, ScoreSummary, VariantSummary
from safeadapt.safety import run_intervals as family_intervals
from safeadapt.safety import run_scores as family_scores
from safeadapt.study.outputs import Outputs, example_intervals


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else None


# the run-level scores every study has, besides accuracy:ood:<split> and the safety families'
# (the names ``checks:`` may bound; run_scores returns exactly these, tested)
BUILTIN_SCORES = tuple(SCORES)


def run_scores(run: RunRecord) -> dict[str, float | None]:
    """One run's flat scores (``None`` where not measured): selection scores (``val_*``,
    ``ood_val_*``) and the reported test-side scores."""
    val = run.selection.get("val")
    test = run.test
    ood = run.ood_splits()
    cost = run.cost
    scores: dict[str, float | None] = {
        "val_accuracy": val.accuracy if val else None,
        "ood_val_accuracy": _mean([run.selection[k].accuracy for k in run.ood_val_splits()]),
        "val_ece": val.ece if val else None,
        "id_accuracy": test.accuracy,
        "ood_accuracy": _mean([run.metrics[k].accuracy for k in ood]),
        "ece": test.ece,
        "nll": test.nll,
        "brier": test.brier,
        "fit_seconds": run.fit_seconds,
        "eval_seconds": run.eval_seconds,
        "trainable_parameters": float(cost.trainable_parameters) if cost else None,
        "peak_rss_mb": cost.peak_rss_mb if cost else None,
    }
    for k in ood:
        scores[f"accuracy:{k}"] = run.metrics[k].accuracy
    scores.update(family_scores(run.safety))  # registered safety families own their scores
    return scores


@dataclass(frozen=True)
class Candidate:
    """A variant's summary with its per-example outputs, while the verdict is made."""

    summary: VariantSummary
    outputs: Outputs

    @property
    def name(self) -> str:
        return self.summary.variant

    def mean(self, key: str, default: float = 0.0) -> float:
        value = self.summary.mean(key)
        return default if value is None else value


def _score_summary(key: str, vals: list[float], interval: tuple | None) -> ScoreSummary:
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    summary = ScoreSummary(mean, std, len(vals))
    if interval is not None:  # every interval contains its estimate (the mean over seeds)
        lo, hi, method = interval
        lo, hi = contain(lo, hi, mean)
        summary = dataclasses.replace(summary, ci_low=lo, ci_high=hi, ci_method=method)
    seed_ci = t_interval(vals)
    if seed_ci is not None and key != "trainable_parameters":
        lo, hi = seed_ci
        summary = dataclasses.replace(summary, seed_ci_low=lo, seed_ci_high=hi)
    return summary


def aggregate(
    runs: Sequence[RunRecord],
    predictions: dict[str, Any] | None = None,
    families: Collection[str] | None = None,
) -> list[Candidate]:
    """Per variant, in first-seen order: its scores over seeds, each with its interval from
    per-example outputs (Wilson / bootstrap over examples; each safety family's own, for the
    ``families`` named, all by default) and with >= 2 seeds the t-interval across seeds; and
    its outputs."""
    predictions = predictions or {}
    by_variant: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_variant.setdefault(r.variant, []).append(r)
    out = []
    for variant, group in by_variant.items():
        per_run = [run_scores(r) for r in group]
        outputs = Outputs({r.seed: predictions.get(r.run_id) for r in group})
        splits = ["val", "test", *[k for k in group[0].metrics if k != "test"]]
        splits += list(group[0].selection)
        intervals = example_intervals(outputs, list(dict.fromkeys(splits))) if outputs else {}
        intervals.update(family_intervals([r.safety for r in group], outputs, families))
        keys = list(dict.fromkeys(k for s in per_run for k in s))
        scores = {}
        for k in keys:
            vals = [s.get(k) for s in per_run if s.get(k) is not None]
            vals = [v for v in vals if not math.isnan(v)]
            if vals:
                scores[k] = _score_summary(k, vals, intervals.get(k))
        protocol = group[0].run.protocol if group[0].run else group[0].protocol
        summary = VariantSummary(variant, protocol, tuple(r.seed for r in group), scores)
        out.append(Candidate(summary, outputs))
    return out

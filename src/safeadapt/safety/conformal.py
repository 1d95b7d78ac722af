"""Conformal prediction under shift: does the coverage guarantee survive the OOD splits?

Split conformal prediction calibrated on ID **validation** at target coverage ``1 - alpha``:

- ``lac`` -- least ambiguous set-valued classifier (Sadinle, Lei & Wasserman 2019): score
  ``s = 1 - p_y``; set ``{k : 1 - p_k <= q}``;
- ``aps`` -- adaptive prediction sets (Romano, Sesia & Candes 2020), non-randomised: score = the
  total probability of the classes ranked up to and including the true one; set = the top
  classes until that mass reaches ``q``.

``q`` is the ``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of the calibration scores, so
on exchangeable data the coverage is at least ``1 - alpha`` (Vovk et al. 2005; Angelopoulos &
Bates 2021). Under shift the guarantee does not hold; the empirical coverage and mean set size
on ID test vs each OOD split show how much it breaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from safeadapt.config import check_settings, interval, one_of, setting
from safeadapt.results import StudySummary
from safeadapt.safety.base import EvalContext, Family, SafetyResult, Score, register_family

METHODS = ("lac", "aps")


def _aps_scores(probs: np.ndarray) -> np.ndarray:
    """``(N, K)``: for each class, the probability mass of the classes ranked up to it."""
    order = np.argsort(-probs, axis=1, kind="stable")
    sorted_p = np.take_along_axis(probs, order, axis=1)
    cum = np.cumsum(sorted_p, axis=1)
    out = np.empty_like(cum)
    np.put_along_axis(out, order, cum, axis=1)
    return out


def nonconformity(probs: np.ndarray, method: str) -> np.ndarray:
    """Per-class scores ``(N, K)``: a class is in the set when its score is <= the threshold."""
    if method == "lac":
        return 1.0 - probs
    if method == "aps":
        return _aps_scores(probs)
    raise ValueError(f"'method' must be one of {METHODS}; got {method!r}")


def calibrate(probs: np.ndarray, labels: np.ndarray, alpha: float, method: str) -> float:
    """The conformal threshold from calibration ``probs (n, K)`` and ``labels (n,)``."""
    n = len(labels)
    scores = nonconformity(probs, method)[np.arange(n), labels]
    rank = math.ceil((n + 1) * (1 - alpha) - 1e-9)  # the k-th smallest score (Vovk; MAPIE)
    if rank > n:  # too few calibration examples for this alpha: every class is in the set
        return math.inf
    return float(np.sort(scores)[rank - 1])


def prediction_sets(probs: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Boolean ``(N, K)``: class k is in example i's set."""
    return nonconformity(probs, method) <= threshold


@dataclass(frozen=True)
class ConformalConfig:
    """Split-conformal prediction sets calibrated on ID val."""

    coverage: float = setting(0.9, "the target coverage (1 - alpha)",
                              interval(0, 1, closed_low=False))  # fmt: skip
    method: str = setting("lac", "the nonconformity score: lac or aps", one_of(METHODS))

    def __post_init__(self) -> None:
        check_settings(self, "safety 'conformal'")


@dataclass(frozen=True)
class SplitCoverage:
    coverage: float
    mean_set_size: float
    empty_sets: float  # share of examples with an empty set


@dataclass(frozen=True)
class ConformalResult(SafetyResult):
    """The calibrated threshold and, per evaluation split, coverage and set size."""

    target: float
    method: str
    threshold: float | None  # None: infinite (every class in every set)
    calibration: str
    n_calibration: int
    splits: dict[str, SplitCoverage]


@register_family("conformal", order=100)
class Conformal(Family):
    title = "Conformal sets calibrated on ID val: coverage and set size on ID test vs OOD"
    Config = ConformalConfig
    Result = ConformalResult
    SCORES = {
        "conformal_coverage": ("conformal coverage (ID)", None, ".3f"),
        "conformal_ood_coverage": ("conformal coverage (OOD min)", True, ".3f"),
        "conformal_set_size": ("conformal set size (ID)", False, ".2f"),
    }

    def measure(self, ctx: EvalContext, config: ConformalConfig) -> ConformalResult:
        alpha = 1 - config.coverage
        cal = ctx.logits("val").double().softmax(1).numpy()
        q = calibrate(cal, ctx.labels("val"), alpha, config.method)
        splits = {}
        for name in ctx.eval_names:
            probs = ctx.logits(name).double().softmax(1).numpy()
            sets = prediction_sets(probs, q, config.method)
            labels = ctx.labels(name)
            splits[name] = SplitCoverage(
                coverage=float(sets[np.arange(len(labels)), labels].mean()),
                mean_set_size=float(sets.sum(1).mean()),
                empty_sets=float((sets.sum(1) == 0).mean()),
            )
        return ConformalResult(
            target=config.coverage,
            method=config.method,
            threshold=q if math.isfinite(q) else None,
            calibration="val",
            n_calibration=len(ctx.labels("val")),
            splits=splits,
        )

    def scores(self, result: ConformalResult) -> dict[str, Score]:
        ood = [v.coverage for k, v in result.splits.items() if k.startswith("ood:")]
        test = result.splits.get("test")
        values = {
            "conformal_coverage": test.coverage if test else None,
            "conformal_ood_coverage": min(ood) if ood else None,
            "conformal_set_size": test.mean_set_size if test else None,
        }
        return self.declared(values)

    def figure(
        self, results: dict[str, list[ConformalResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Empirical coverage of the conformal sets per split (dashed: the target): ID test
        should sit at or above it; the drop on OOD splits is the guarantee breaking under shift."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        data = mean_over_seeds(results, lambda r: {k: v.coverage for k, v in r.splits.items()})
        if not data:
            return None
        target = next(iter(results.values()))[0].target
        return bars(data, "coverage", hline=target, ylim=(0.0, 1.02))

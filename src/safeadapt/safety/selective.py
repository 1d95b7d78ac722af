"""Selective prediction: how well the model's confidence ranks its own errors.

Sort examples by confidence (max softmax), most confident first; at coverage ``k / N`` the
selective risk is the error rate among the ``k`` most confident. The risk-coverage curve and its
area (AURC, Geifman & El-Yaniv 2017; Geifman, Uziel & El-Yaniv 2019) summarise it: lower is
better. E-AURC subtracts the AURC of a perfect ranker with the same accuracy (all errors last),
so it measures the ranking alone. Reported on ID test and every OOD split, and as risk at 80 %
coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safeadapt.config import check_settings, count, interval, setting
from safeadapt.results import StudySummary
from safeadapt.safety.base import EvalContext, Family, SafetyResult, Score, register_family


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``coverage (N,)`` = k / N and ``risk (N,)`` = the expected errors among the k most
    confident, for k = 1..N, when examples of equal confidence enter in a random order: the
    errors of a tie block are spread evenly over its positions (so the curve, and AURC, do not
    depend on how the rows happen to be sorted)."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or confidence.size == 0:
        raise ValueError(
            f"expected two non-empty 1-D arrays of one length; got {confidence.shape} and "
            f"{correct.shape}"
        )
    order = np.argsort(-confidence, kind="stable")
    conf, wrong = confidence[order], (~correct[order]).astype(np.float64)
    # tie blocks: [start, end) runs of equal confidence in the sorted order
    starts = np.flatnonzero(np.r_[True, conf[1:] != conf[:-1]])
    ends = np.r_[starts[1:], len(conf)]
    block_errors = np.add.reduceat(wrong, starts)
    before = np.r_[0.0, np.cumsum(block_errors)[:-1]]
    block = np.repeat(np.arange(len(starts)), ends - starts)
    within = np.arange(len(conf)) - starts[block] + 1  # position inside its block, 1..size
    errors = before[block] + block_errors[block] * within / (ends - starts)[block]
    k = np.arange(1, len(order) + 1)
    return k / len(order), errors / k


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve: the mean selective risk over k = 1..N."""
    return float(risk_coverage(confidence, correct)[1].mean())


def optimal_aurc(correct: np.ndarray) -> float:
    """AURC of a perfect ranker (every correct example before every error)."""
    c = np.asarray(correct, bool)
    return aurc(c.astype(float), c)


def risk_at(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    cov, risk = risk_coverage(confidence, correct)
    return float(risk[min(len(risk) - 1, int(np.ceil(coverage * len(risk))) - 1)])


@dataclass(frozen=True)
class SelectiveConfig:
    """Selective prediction: risk against coverage when the least confident are abstained on."""

    coverage: float = setting(0.8, "the coverage the 'risk at' score reads",
                              interval(0, 1, closed_high=True, closed_low=False))  # fmt: skip
    curve_points: int = setting(50, "points of each stored curve", count(2, 100_000))

    def __post_init__(self) -> None:
        check_settings(self, "safety 'selective'")


@dataclass(frozen=True)
class RiskCurve:
    """Selective risk at each coverage (a thinned curve)."""

    coverage: list[float]
    risk: list[float]


@dataclass(frozen=True)
class SplitSelective:
    aurc: float
    e_aurc: float  # AURC minus the best possible for the split's errors
    risk_at_coverage: float
    curve: RiskCurve


@dataclass(frozen=True)
class SelectiveResult(SafetyResult):
    """Per evaluation split: AURC, E-AURC, the risk at ``coverage`` and the curve."""

    coverage: float
    splits: dict[str, SplitSelective]

    def ood(self) -> dict[str, SplitSelective]:
        return {k: v for k, v in self.splits.items() if k.startswith("ood:")}


@register_family("selective", order=90)
class Selective(Family):
    title = "Selective prediction: risk-coverage curve, AURC and E-AURC per split"
    Config = SelectiveConfig
    Result = SelectiveResult
    SCORES = {
        "aurc": ("AURC (ID)", False, ".3f"),
        "ood_aurc": ("AURC (OOD mean)", False, ".3f"),
        "risk_at_coverage": ("risk at coverage (ID)", False, ".3f"),
    }

    def measure(self, ctx: EvalContext, config: SelectiveConfig) -> SelectiveResult:
        splits = {}
        for name in ctx.eval_names:
            probs = ctx.logits(name).double().softmax(1).numpy()
            conf = probs.max(1)
            correct = probs.argmax(1) == ctx.labels(name)
            cov, risk = risk_coverage(conf, correct)
            pick = np.unique(np.linspace(0, len(cov) - 1, config.curve_points).round().astype(int))
            splits[name] = SplitSelective(
                aurc=aurc(conf, correct),
                e_aurc=aurc(conf, correct) - optimal_aurc(correct),
                risk_at_coverage=risk_at(conf, correct, config.coverage),
                curve=RiskCurve(cov[pick].tolist(), risk[pick].tolist()),
            )
        return SelectiveResult(config.coverage, splits)

    def scores(self, result: SelectiveResult) -> dict[str, Score]:
        test = result.splits.get("test")
        ood = [v.aurc for v in result.ood().values()]
        values = {
            "aurc": test.aurc if test else None,
            "ood_aurc": float(np.mean(ood)) if ood else None,
            "risk_at_coverage": test.risk_at_coverage if test else None,
        }
        return self.declared(values)

    def figure(
        self, results: dict[str, list[SelectiveResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Risk-coverage curves (first seed) on ID test (solid) and the first OOD split (dashed):
        lower is better; a curve that stays low as coverage grows ranks its errors last."""
        from safeadapt.safety.figures import colors, plt, png

        rows = {v: rs[0] for v, rs in results.items() if rs and "test" in rs[0].splits}
        if not rows:
            return None
        palette = colors(list(rows))
        fig, ax = plt().subplots(figsize=(6.5, 3.4))
        for variant, r in rows.items():
            t = r.splits["test"].curve
            ax.plot(t.coverage, t.risk, color=palette[variant], label=f"{variant} (ID)")
            ood = list(r.ood())
            if ood:
                c = r.splits[ood[0]].curve
                ax.plot(
                    c.coverage,
                    c.risk,
                    color=palette[variant],
                    ls="--",
                    label=f"{variant} ({ood[0]})",
                )
        ax.set_xlabel("coverage")
        ax.set_ylabel("selective risk")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        return png(fig)

"""Effective robustness (Taori et al. 2020): OOD accuracy above the ID -> OOD trend of a baseline
family, here linear probes of the pretrained backbone over a grid of C (``safeadapt.linear``,
cached features). The trend is a line in probit space per OOD split
(``safeadapt.metrics.effective``); a run's effective robustness on a split is its OOD test
accuracy minus the trend's prediction at its ID test accuracy.

The trend depends only on the pretrained features (keyed by content) and the grid, so it is fitted
once per process and reused by every run. Its points and fits are stored with each run (the
ID-vs-OOD figure draws them). The interval resamples ID and OOD test examples separately, the
trend held fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from safeadapt.config import check_settings, each, positive_number, setting
from safeadapt.results import StudySummary
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    absent,
    register_family,
)

_TRENDS: dict[tuple, dict[str, Any]] = {}


@dataclass(frozen=True)
class EffectiveRobustnessConfig:
    """Effective robustness (Taori et al. 2020): OOD accuracy above the trend of linear probes."""

    c_grid: tuple[float, ...] = setting(
        (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 1.0),
        "the linear probes' C values that make the baseline trend (two or more)",
        each(positive_number(), least=2, limit=100),
    )

    def __post_init__(self) -> None:
        check_settings(self, "safety 'effective_robustness'")


@dataclass(frozen=True)
class TrendFit:
    """The probit-linear fit of OOD on ID accuracy: ``Phi^-1(ood) = slope Phi^-1(id) + b``."""

    slope: float
    intercept: float


@dataclass(frozen=True)
class TrendPoint:
    """One linear probe of the trend: its ``C`` and its accuracy per evaluation split. Stored
    flat, as ``{"C": c, "<split>": accuracy, ...}``."""

    C: float
    accuracy: dict[str, float]

    @property
    def id_accuracy(self) -> float:
        """The probe's ID test accuracy (the trend's x)."""
        return self.accuracy["test"]

    def to_json(self) -> dict[str, float]:
        return {"C": self.C, **self.accuracy}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrendPoint:
        return cls(float(raw["C"]), {k: float(v) for k, v in raw.items() if k != "C"})


@dataclass(frozen=True)
class LPTrend:
    """The baseline: linear probes of the pretrained backbone over C, and the fit per OOD
    split."""

    baseline: str
    points: list[TrendPoint]
    fits: dict[str, TrendFit]


@dataclass(frozen=True)
class EffectiveRobustnessResult(SafetyResult):
    """The run's ID test and OOD accuracies and their height above the trend, per OOD split
    (nothing when the run has no OOD split or no pretrained backbone)."""

    id_accuracy: float | None = absent()
    ood_accuracy: dict[str, float] | None = absent()
    values: dict[str, float] | None = absent()
    trend: LPTrend | None = absent()


def lp_trend(ctx: EvalContext, c_grid: tuple[float, ...]) -> LPTrend:
    """Linear probes over ``c_grid`` on the pretrained features: their (ID test, OOD) accuracy
    points and the probit-linear fit per OOD split (memoised on the features' content keys)."""
    from safeadapt.linear import probe_path
    from safeadapt.metrics.effective import fit_trend

    names = ["train", *ctx.eval_names]
    splits = ctx.task.splits()
    key = (
        tuple(ctx.cache.key(ctx.pretrained(), splits[n]) for n in names),
        tuple(sorted(c_grid)),
    )
    if key not in _TRENDS:
        train, *evaluated = (ctx.pretrained_features(n) for n in names)
        feats = dict(zip(ctx.eval_names, evaluated, strict=True))
        points = []
        for c, head in probe_path(
            train, torch.from_numpy(ctx.labels("train")), ctx.task.num_classes, c_grid
        ):
            accuracy = {
                n: float((head.logits(feats[n]).argmax(1).numpy() == ctx.labels(n)).mean())
                for n in ctx.eval_names
            }
            points.append(TrendPoint(float(c), accuracy))
        fits = {}
        for n in ctx.ood_names:
            t = fit_trend([p.id_accuracy for p in points], [p.accuracy[n] for p in points])
            fits[n] = TrendFit(t.slope, t.intercept)
        _TRENDS[key] = LPTrend("linear probes of the pretrained backbone over C", points, fits)
    return _TRENDS[key]


@register_family("effective_robustness", order=10)
class EffectiveRobustness(Family):
    title = "Effective robustness: OOD accuracy above the linear-probe ID->OOD trend"
    Config = EffectiveRobustnessConfig
    Result = EffectiveRobustnessResult
    SCORES = {"effective_robustness": ("eff. robustness", True, "+.3f")}

    def measure(
        self, ctx: EvalContext, config: EffectiveRobustnessConfig
    ) -> EffectiveRobustnessResult:
        from safeadapt.metrics.effective import Trend, effective_robustness

        if not ctx.has_pretrained or not ctx.ood_names:
            return EffectiveRobustnessResult()
        trend = lp_trend(ctx, config.c_grid)

        def acc(n: str) -> float:
            return float((ctx.logits(n).argmax(1).numpy() == ctx.labels(n)).mean())

        id_acc = acc("test")
        ood = {n: acc(n) for n in ctx.ood_names}
        values = {
            n: effective_robustness(id_acc, ood[n], Trend(f.slope, f.intercept, len(trend.points)))
            for n, f in trend.fits.items()
        }
        return EffectiveRobustnessResult(id_acc, ood, values, trend)

    def scores(self, result: EffectiveRobustnessResult) -> dict[str, Score]:
        values = result.values or {}
        label, higher, fmt = self.SCORES["effective_robustness"]
        out = {
            "effective_robustness": Score(
                float(np.mean(list(values.values()))) if values else None, label, higher, fmt
            )
        }
        for n, v in values.items():
            out[f"effective_robustness:{n}"] = Score(v, f"{label} {n}", higher, fmt)
        return out

    def intervals(self, results: list[EffectiveRobustnessResult], outputs: Any) -> dict[str, tuple]:
        """OOD accuracy above the trend at the run's ID accuracy, per seed, averaged over splits
        and seeds; ID test and each OOD split resampled separately, the trend held fixed."""
        from scipy.stats import norm

        from safeadapt.metrics.effective import _probit
        from safeadapt.metrics.intervals import stratified_bootstrap

        fits = results[0].trend.fits if results[0].trend else {}
        test = outputs.split("test") if outputs else None
        ood = {n: outputs.split(n) for n in fits} if outputs else {}
        ood = {n: v for n, v in ood.items() if v is not None}
        if test is None or not ood:
            return {}

        def er(d) -> float:
            id_acc = d["test"][0].mean(1)  # (S,)
            vals = []
            for k in ood:
                pred = norm.cdf(fits[k].slope * _probit(id_acc) + fits[k].intercept)
                vals.append(d[k][0].mean(1) - pred)
            return float(np.mean(vals))

        parts = {"test": [test.correct.astype(float)]}
        parts.update({k: [v.correct.astype(float)] for k, v in ood.items()})
        lo, hi = stratified_bootstrap(er, parts)
        return {
            "effective_robustness": (
                lo,
                hi,
                "bootstrap (ID and OOD resampled separately; trend fixed)",
            )
        }

    def facts(self, result: EffectiveRobustnessResult) -> list[str]:
        points = result.trend.points if result.trend else []
        if not points:
            return []
        cs = ", ".join(f"{p.C:g}" for p in points)
        return [
            f"Effective robustness: trend of linear probes of the pretrained backbone at C = {cs}."
        ]

    def figure(
        self,
        results: dict[str, list[EffectiveRobustnessResult]],
        summary: StudySummary | None = None,
    ) -> bytes | None:
        """ID vs OOD test accuracy per run, one panel per OOD split, with the linear-probe trend
        (effective robustness = height above the dashed line); error bars: 95 % intervals of
        each variant's mean."""
        from scipy.stats import norm

        from safeadapt.safety.figures import colors, plt, png

        runs = [(v, r) for v, rs in results.items() for r in rs if r.values and r.trend]
        if not runs:
            return None
        trend = runs[0][1].trend
        ood = list(trend.fits)
        p = plt()
        fig, axes = p.subplots(1, len(ood), figsize=(4.2 * len(ood), 3.8), squeeze=False)
        palette = colors(list(results))
        pts = trend.points
        ids = [q.id_accuracy for q in pts] + [r.id_accuracy for _, r in runs]
        xs = np.linspace(min(ids) - 0.02, max(ids) + 0.02, 50).clip(1e-3, 1 - 1e-3)
        for ax, split in zip(axes[0], ood, strict=True):
            for v, r in runs:
                ax.scatter(
                    r.id_accuracy,
                    r.ood_accuracy[split],
                    color=palette[v],
                    label=v,
                    s=40,
                    edgecolor="black",
                    linewidth=0.5,
                )
            for v in summary.variants if summary else ():  # 95 % intervals of each mean
                sx = v.scores.get("id_accuracy")
                sy = v.scores.get(f"accuracy:{split}")
                if sx and sy and sx.has_interval and sy.has_interval:
                    ax.errorbar(
                        sx.mean,
                        sy.mean,
                        xerr=[[max(0.0, sx.mean - sx.ci_low)], [max(0.0, sx.ci_high - sx.mean)]],
                        yerr=[[max(0.0, sy.mean - sy.ci_low)], [max(0.0, sy.ci_high - sy.mean)]],
                        color=palette.get(v.variant, "black"),
                        alpha=0.6,
                        capsize=2,
                        linewidth=1,
                    )
            ax.scatter(
                [q.id_accuracy for q in pts],
                [q.accuracy[split] for q in pts],
                marker="x",
                color="grey",
                label="LP over C",
            )
            fit = trend.fits[split]
            ax.plot(
                xs,
                norm.cdf(fit.slope * norm.ppf(xs) + fit.intercept),
                color="grey",
                linestyle="--",
                label="LP trend",
            )
            ax.set_xlabel("ID test accuracy")
            ax.set_ylabel(f"{split.removeprefix('ood:')} accuracy")
            ax.set_title(split.removeprefix("ood:"))
            ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        fig.legend(
            unique.values(),
            unique.keys(),
            loc="lower center",
            ncol=min(6, len(unique)),
            bbox_to_anchor=(0.5, -0.08),
            frameon=False,
        )
        return png(fig)

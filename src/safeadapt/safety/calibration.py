"""Calibration after temperature scaling (Guo et al. 2017), and reliability diagrams.

The per-split ECE / NLL / Brier of the raw predictions are prediction metrics
(``safeadapt.metrics``, in every run's ``metrics``). This family adds what needs a fit: one
temperature ``T`` fitted on ID validation (NLL, L-BFGS), the scaled ECE / NLL / Brier on every
evaluation split, and the reliability-diagram bins of ID test before and after scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safeadapt.config import check_settings, count, flag, setting
from safeadapt.metrics import METRICS
from safeadapt.metrics.calibration import Reliability
from safeadapt.results import StudySummary
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    absent,
    register_family,
)

SCALED = ("ece", "ece_adaptive", "nll", "brier")


@dataclass(frozen=True)
class CalibrationConfig:
    """Calibration: expected calibration error and the reliability diagram, before and after
    temperature scaling."""

    temperature_scaling: bool = setting(
        True, "fit a temperature on ID val and score the scaled predictions too", flag()
    )
    bins: int = setting(15, "equal-width bins of ECE and the reliability diagram",
                        count(2, 10_000))  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self, "safety 'calibration'")


@dataclass(frozen=True)
class CalibrationResult(SafetyResult):
    """The reliability bins of ID test (``test``, and ``test_ts`` after scaling); with
    temperature scaling, T and the scaled ECE / NLL / Brier of every evaluation split."""

    reliability: dict[str, Reliability]
    temperature: float | None = absent()
    splits: dict[str, dict[str, float]] | None = absent()


@register_family("calibration", order=20)
class Calibration(Family):
    title = "Calibration after temperature scaling (fitted on ID val), reliability diagrams"
    Config = CalibrationConfig
    Result = CalibrationResult
    SCORES = {"ece_temperature_scaled": ("ECE (temp. scaled)", False, ".3f")}

    def measure(self, ctx: EvalContext, config: CalibrationConfig) -> CalibrationResult:
        from safeadapt.metrics.calibration import fit_temperature, reliability_data

        test_labels = torch.from_numpy(ctx.labels("test"))

        def bins(logits) -> Reliability:
            return reliability_data(logits, test_labels, config.bins)

        if not config.temperature_scaling:
            return CalibrationResult({"test": bins(ctx.logits("test"))})
        t = fit_temperature(ctx.logits("val"), torch.from_numpy(ctx.labels("val")))
        splits = {
            name: {
                m: METRICS.get(m)(ctx.logits(name) / t, torch.from_numpy(ctx.labels(name)))
                for m in SCALED
            }
            for name in ctx.eval_names
        }
        reliability = {"test": bins(ctx.logits("test")), "test_ts": bins(ctx.logits("test") / t)}
        return CalibrationResult(reliability, t, splits)

    def scores(self, result: CalibrationResult) -> dict[str, Score]:
        value = (result.splits or {}).get("test", {}).get("ece")
        return self.declared({"ece_temperature_scaled": value})

    def facts(self, result: CalibrationResult) -> list[str]:
        if result.temperature is None:
            return []
        return ["Temperature scaling: one T per run, fitted on ID val (NLL); T is in each record."]

    def figure(
        self, results: dict[str, list[CalibrationResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Reliability diagram (ID test, first seed of each variant): accuracy vs confidence per
        bin, before temperature scaling."""
        import numpy as np

        from safeadapt.safety.figures import plt, png

        data = {v: rs[0].reliability.get("test") for v, rs in results.items() if rs}
        data = {k: v for k, v in data.items() if v}
        if not data:
            return None
        p = plt()
        fig, axes = p.subplots(1, len(data), figsize=(3.2 * len(data), 3.2), squeeze=False)
        for ax, (v, rel) in zip(axes[0], data.items(), strict=True):
            n = len(rel.count)
            edges = np.linspace(0, 1, n + 1)
            mask = np.asarray(rel.count) > 0
            acc = np.asarray(rel.accuracy)[mask]
            ax.bar(
                edges[:-1][mask],
                acc,
                width=1 / n,
                align="edge",
                color="#4c72b0",
                edgecolor="white",
                label="accuracy",
            )
            ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
            ax.scatter(
                np.asarray(rel.confidence)[mask],
                acc,
                color="#dd8452",
                s=12,
                zorder=3,
                label="bin mean confidence",
            )
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(v)
            ax.set_xlabel("confidence")
        axes[0][0].set_ylabel("accuracy")
        axes[0][0].legend(fontsize=7, loc="upper left")
        return png(fig)

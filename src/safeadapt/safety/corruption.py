"""Robustness to common corruptions of the raw inputs, at graded severities, on a capped, seeded
ID-test sample (``safeadapt.perturb``: image noise / blur / contrast / JPEG ... after
Hendrycks & Dietterich 2019; text typos, word drops and swaps ...).

Per kind and severity: accuracy, and the prediction-flip rate -- the share of the sample whose
predicted class changes from the clean input's (a model can keep its accuracy while changing many
answers). Summary: the mean corrupted accuracy and its drop relative to clean. This is not
ImageNet-C's published mCE protocol (no AlexNet normalisation, our own generated set).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from safeadapt.config import MAX_SAMPLE, Rule, check_settings, count, each, one_of, setting
from safeadapt.results import StudySummary
from safeadapt.safety.adversarial import pooled_wilson
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    absent,
    register_family,
)


def _corruption_names() -> tuple[str, ...]:
    from safeadapt.perturb import IMAGE_CORRUPTIONS, TEXT_CORRUPTIONS

    return tuple(sorted({*IMAGE_CORRUPTIONS.names(), *TEXT_CORRUPTIONS.names()}))


_SEVERITY = Rule("an integer in 1..5 (text: 1..3)", lambda v: type(v) is int and 1 <= v <= 5)


@dataclass(frozen=True)
class CorruptionConfig:
    """Common corruptions of the ID-test inputs (Hendrycks & Dietterich 2019; text: typos and
    word edits), each at several severities."""

    kinds: tuple[str, ...] | None = setting(
        None, "the corruptions; null: every kind of the task's modality",
        each(one_of(_corruption_names), limit=100),
    )  # fmt: skip
    severities: tuple[int, ...] | None = setting(
        None, "the severities; null: all (image 1-5, text 1-3)", each(_SEVERITY, limit=5)
    )
    max_examples: int = setting(200, "the ID-test sample corrupted", count(1, MAX_SAMPLE))

    def __post_init__(self) -> None:
        check_settings(self, "safety 'corruption'")


def _unchanged(corrupted, clean) -> bool:
    if isinstance(clean, np.ndarray):
        return bool(np.array_equal(corrupted, clean))
    return list(corrupted) == list(clean)


@dataclass(frozen=True)
class CorruptionResult(SafetyResult):
    """Accuracy and flip rate (vs the clean predictions) per corruption kind and severity on
    ``n`` ID-test examples; the mean, the drop relative to clean, and each kind's mean (stored
    as ``mean_<kind>`` entries, the layout of earlier releases). Nothing measured: only the
    kinds left out (another modality's, or no effect on these inputs)."""

    n: int | None = absent()
    accuracy: dict[str, dict[str, float]] | None = absent()
    flip_rate: dict[str, dict[str, float]] | None = absent()
    mean_flip_rate: float | None = absent()
    clean_accuracy: float | None = absent()
    mean_accuracy: float | None = absent()
    relative_drop: float | None = absent()
    per_kind: dict[str, float] | None = absent()
    skipped_kinds: list[str] | None = absent()

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out.update({f"mean_{k}": v for k, v in (out.pop("per_kind", None) or {}).items()})
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CorruptionResult:
        kinds = raw.get("accuracy") or {}
        per_kind = {k: raw[f"mean_{k}"] for k in kinds if f"mean_{k}" in raw}
        plain = {k: v for k, v in raw.items() if k.removeprefix("mean_") not in per_kind}
        result = super().from_json(plain)
        return dataclasses.replace(result, per_kind=per_kind) if per_kind else result


@register_family("corruption", order=40)
class Corruption(Family):
    title = "Accuracy and prediction flips under common corruptions, by severity"
    Config = CorruptionConfig
    Result = CorruptionResult
    SCORES = {
        "corruption_accuracy": ("corrupted acc", True, ".3f"),
        "corruption_drop": ("corruption drop", False, ".3f"),
        "corruption_flip_rate": ("corruption flips", False, ".3f"),
    }

    def measure(self, ctx: EvalContext, config: CorruptionConfig) -> CorruptionResult:
        from safeadapt.data.features import features_of
        from safeadapt.data.task import Split
        from safeadapt.metrics.corruption import corruption_summary
        from safeadapt.perturb import SEVERITIES, corrupt, corruptions_for

        task = ctx.task
        available = corruptions_for(task.modality).names()
        kinds = [k for k in config.kinds or available if k in available]
        severities = [
            s
            for s in config.severities or SEVERITIES[task.modality]
            if s in SEVERITIES[task.modality]
        ]
        skipped = [k for k in config.kinds or () if k not in available]
        if not kinds or not severities:
            return CorruptionResult(skipped_kinds=skipped or None)
        sample = task.test.sample(config.max_examples, ctx.seed)
        labels = sample.labels
        w, b = ctx.head

        def predict(split: Split) -> np.ndarray:
            feats = features_of(
                ctx.model,
                split,
                cache=ctx.cache,
                frozen_backbone=ctx.frozen_backbone,
                show_progress=ctx.show_progress,
            )
            with torch.no_grad():
                return (feats.float() @ w.T + b).argmax(1).numpy()

        clean = predict(sample)
        acc: dict[str, dict[int, float]] = {}
        flips: dict[str, dict[str, float]] = {}
        for kind in kinds:
            acc[kind], flips[kind] = {}, {}
            for sev in severities:
                inputs = corrupt(sample.inputs, task.modality, kind, sev, seed=ctx.seed)
                if _unchanged(inputs, sample.inputs):  # e.g. saturate on greyscale images
                    break
                pred = predict(Split(f"{kind}-{sev}", inputs, labels))
                acc[kind][sev] = float((pred == labels).mean())
                flips[kind][str(sev)] = float((pred != clean).mean())
            if len(acc[kind]) < len(severities):
                skipped.append(kind)
                del acc[kind], flips[kind]
        if not acc:
            return CorruptionResult(skipped_kinds=skipped)
        all_flips = [f for per in flips.values() for f in per.values()]
        summary = corruption_summary(float((clean == labels).mean()), acc)
        return CorruptionResult(
            n=len(sample),
            accuracy={k: {str(s): a for s, a in v.items()} for k, v in acc.items()},
            flip_rate=flips,
            mean_flip_rate=float(np.mean(all_flips)),
            clean_accuracy=summary.pop("clean_accuracy"),
            mean_accuracy=summary.pop("mean_accuracy"),
            relative_drop=summary.pop("relative_drop"),
            per_kind={k.removeprefix("mean_"): v for k, v in summary.items()},
            skipped_kinds=skipped or None,  # other modality, or no effect
        )

    def scores(self, result: CorruptionResult) -> dict[str, Score]:
        values = {
            "corruption_accuracy": result.mean_accuracy,
            "corruption_drop": result.relative_drop,
            "corruption_flip_rate": result.mean_flip_rate,
        }
        return self.declared(values)

    def intervals(self, results: list[CorruptionResult], outputs: Any) -> dict[str, tuple]:
        interval = pooled_wilson([(r.mean_accuracy, r.n) for r in results])
        return {} if interval is None else {"corruption_accuracy": interval}

    def facts(self, result: CorruptionResult) -> list[str]:
        kinds = ", ".join(result.accuracy or {})
        out = (
            [
                f"Corruptions ({kinds}) on {result.n} seeded ID-test examples; generated here, "
                "not ImageNet-C's published mCE protocol."
            ]
            if kinds
            else []
        )
        if result.skipped_kinds:
            out.append(
                "Corruptions left out (another modality's, or no effect on these inputs, e.g. "
                f"saturate on greyscale): {', '.join(result.skipped_kinds)}."
            )
        return out

    def figure(
        self, results: dict[str, list[CorruptionResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Accuracy vs corruption severity, averaged over corruption kinds (severity 0 = clean;
        mean over seeds)."""
        from safeadapt.safety.figures import lines

        def curve(c: CorruptionResult) -> dict[float, float]:
            if not c.accuracy or c.clean_accuracy is None:
                return {}
            sev = sorted({int(s) for per in c.accuracy.values() for s in per})
            out = {0.0: c.clean_accuracy}
            for s in sev:
                out[float(s)] = float(np.mean([per[str(s)] for per in c.accuracy.values()]))
            return out

        curves = {v: [curve(r) for r in rs] for v, rs in results.items()}
        return lines(curves, "corruption severity (0 = clean)", "accuracy (mean over kinds)")

"""Feature distortion (Kumar et al., ICLR 2022): how far adaptation moved the backbone's
features, per evaluation split, against the pretrained backbone on the same inputs.

Mean L2, cosine distance and relative L2 change (``safeadapt.metrics.distortion``), and for each
OOD split its OOD/ID ratio of mean L2: Kumar et al. find FT changes ID features more than OOD
ones. LP is exactly 0 (same features). The per-example L2 shift goes into the predictions
(``feature_shift``), where the intervals are bootstrapped from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.metrics.distortion import FeatureChange, distortion_report, per_example_l2
from safeadapt.results import StudySummary
from safeadapt.results.safety import dump_value, load_value
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    register_family,
)


@dataclass(frozen=True)
class DistortionConfig:
    """No settings: the splits are the task's evaluation splits."""


SplitDistortion = FeatureChange  # one split's entry of the family's result


@dataclass(frozen=True)
class DistortionResult(SafetyResult):
    """Per evaluation split (stored flat: ``{split: {...}}``; nothing without a pretrained
    backbone)."""

    splits: dict[str, SplitDistortion]

    def to_json(self) -> dict[str, Any]:
        out = {k: dump_value(v) for k, v in self.splits.items()}
        for k, row in out.items():  # every split but ID test has a ratio, null when undefined
            if k != "test":
                row.setdefault("l2_ratio_to_id", None)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DistortionResult:
        return cls({k: load_value(SplitDistortion, v) for k, v in raw.items()})


@register_family("distortion", order=70)
class Distortion(Family):
    title = "Feature distortion vs the pretrained backbone (L2 / cosine), OOD/ID ratio"
    Config = DistortionConfig
    Result = DistortionResult
    SCORES = {
        "distortion_id": ("distortion (ID L2)", None, ".2f"),
        "distortion_ood_ratio": ("distortion OOD/ID", None, ".2f"),
    }

    def measure(self, ctx: EvalContext, config: DistortionConfig) -> DistortionResult:
        if not ctx.has_pretrained:
            return DistortionResult({})
        names = ctx.eval_names
        original = {k: ctx.pretrained_features(k) for k in names}
        adapted = {k: ctx.features(k) for k in names}
        for k in names:
            ctx.add_column("feature_shift", k, per_example_l2(original[k], adapted[k]).numpy())
        return DistortionResult(distortion_report(original, adapted))

    def scores(self, result: DistortionResult) -> dict[str, Score]:
        ratios = [
            v.l2_ratio_to_id
            for k, v in result.splits.items()
            if k != "test" and v.l2_ratio_to_id is not None
        ]
        test = result.splits.get("test")
        values = {
            "distortion_id": test.l2 if test else None,
            "distortion_ood_ratio": float(np.mean(ratios)) if ratios else None,
        }
        return self.declared(values)

    def intervals(self, results: list[DistortionResult], outputs: Any) -> dict[str, tuple]:
        """Mean L2 shift on ID test and the mean OOD/ID ratio (per seed, then averaged),
        bootstrapped over the per-example ``feature_shift`` column."""
        from safeadapt.metrics.intervals import stratified_bootstrap

        out: dict[str, tuple] = {}
        test = outputs.column("test", "feature_shift") if outputs else None
        if test is None:
            return out
        lo, hi = stratified_bootstrap(lambda d: float(d["test"][0].mean()), {"test": [test]})
        out["distortion_id"] = (lo, hi, "bootstrap")
        ood = sorted({k for r in results for k in r.splits if k.startswith("ood:")})
        others = {k: outputs.column(k, "feature_shift") for k in ood}
        others = {k: v for k, v in others.items() if v is not None}
        if others and (test.mean(1) > 0).all():  # a frozen backbone has no ratio

            def ratio(d) -> float:
                id_l2 = d["test"][0].mean(1)  # (S,)
                return float(np.mean([(d[k][0].mean(1) / id_l2).mean() for k in others]))

            parts = {"test": [test], **{k: [v] for k, v in others.items()}}
            lo, hi = stratified_bootstrap(ratio, parts)
            out["distortion_ood_ratio"] = (lo, hi, "bootstrap (stratified by split)")
        return out

    def figure(
        self, results: dict[str, list[DistortionResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Feature distortion: mean L2 change of backbone features on ID test and each OOD
        split (mean over seeds)."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        data = mean_over_seeds(
            results,
            lambda r: {
                ("ID test" if k == "test" else k.removeprefix("ood:")): v.l2
                for k, v in r.splits.items()
            },
        )
        return bars(data, "mean L2 feature change") if data else None

"""Prediction changes caused by adaptation, against the pretrained backbone's linear probe.

Yan et al. (CVPR 2021, "Positive-congruent training"): when a model is replaced, the examples
the old model got right and the new one gets wrong are *negative flips*; the negative flip rate
(NFR) is their share of all examples, the positive flip rate (PFR) the share it fixes. The "old
model" here is plain LP on the pretrained backbone (what a user has before adapting), so NFR is
the side effect of adaptation a user sees. For LP itself both are 0 by construction. Reported on
ID test and every OOD split, with a few negative-flip examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safeadapt.config import check_settings, count, setting
from safeadapt.results import StudySummary
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    absent,
    register_family,
)


def flip_rates(reference_pred, new_pred, labels) -> dict[str, float]:
    """``nfr`` = P(reference right, new wrong), ``pfr`` = P(reference wrong, new right),
    ``changed`` = P(predictions differ), over all examples."""
    a, b, y = (np.asarray(v) for v in (reference_pred, new_pred, labels))
    if not (a.shape == b.shape == y.shape) or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"expected three non-empty 1-D arrays of one length; got {a.shape}, {b.shape}, {y.shape}"
        )
    ra, rb = a == y, b == y
    return {
        "nfr": float((ra & ~rb).mean()),
        "pfr": float((~ra & rb).mean()),
        "changed": float((a != b).mean()),
    }


@dataclass(frozen=True)
class FlipsConfig:
    """Negative flips: examples the pretrained model's LP got right and the adapted model wrong."""

    examples: int = setting(
        5, "negative-flip examples kept per split (indices; the text too for text tasks)",
        count(0, 10_000),
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self, "safety 'flips'")


@dataclass(frozen=True)
class SplitFlips:
    nfr: float  # reference right, adapted wrong
    pfr: float  # reference wrong, adapted right
    changed: float
    negative_flip_examples: list[int]  # indices into the split


@dataclass(frozen=True)
class FlipsResult(SafetyResult):
    """Flip rates against the reference per evaluation split (none without a pretrained
    backbone)."""

    splits: dict[str, SplitFlips]
    reference: str | None = absent()


@register_family("flips", order=110)
class Flips(Family):
    title = "Prediction flips vs the pretrained linear probe (negative / positive flip rate)"
    Config = FlipsConfig
    Result = FlipsResult
    SCORES = {
        "negative_flip_rate": ("neg. flip rate vs LP (ID)", False, ".3f"),
        "ood_negative_flip_rate": ("neg. flip rate vs LP (OOD mean)", False, ".3f"),
    }

    def measure(self, ctx: EvalContext, config: FlipsConfig) -> FlipsResult:
        if not ctx.has_pretrained:
            return FlipsResult({})
        probe = ctx.pretrained_probe()
        splits = {}
        for name in ctx.eval_names:
            ref = probe.logits(ctx.pretrained_features(name)).argmax(1).numpy()
            new = ctx.logits(name).argmax(1).numpy()
            labels = ctx.labels(name)
            neg = np.flatnonzero((ref == labels) & (new != labels))[: config.examples]
            splits[name] = SplitFlips(**flip_rates(ref, new, labels),
                                      negative_flip_examples=neg.tolist())  # fmt: skip
        return FlipsResult(splits, "plain LP on the pretrained backbone")

    def scores(self, result: FlipsResult) -> dict[str, Score]:
        ood = [v.nfr for k, v in result.splits.items() if k.startswith("ood:")]
        test = result.splits.get("test")
        values = {
            "negative_flip_rate": test.nfr if test else None,
            "ood_negative_flip_rate": float(np.mean(ood)) if ood else None,
        }
        return self.declared(values)

    def figure(
        self, results: dict[str, list[FlipsResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Against the pretrained linear probe, per split: the share of examples adaptation
        fixed (up) and broke (down, the negative flip rate)."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        def get(r: FlipsResult) -> dict[str, float]:
            out = {}
            for k, v in r.splits.items():
                out[f"{k} fixed"] = v.pfr
                out[f"{k} broken"] = -v.nfr
            return out

        data = mean_over_seeds(results, get)
        return bars(data, "flip rate (+ fixed, - broken)", zero_line=True) if data else None

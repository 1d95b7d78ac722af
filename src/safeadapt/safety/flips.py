"""Prediction changes caused by adaptation, against the pretrained backbone's linear probe.

Yan et al. (CVPR 2021, "Positive-congruent training"): when a model is replaced, the examples
the old model got right and the new one gets wrong are *negative flips*; the negative flip rate
(NFR) is their share of all examples, the positive flip rate (PFR) the share it fixes. The "old
model" here is plain LP on the pretrained backbone (what a user has before adapting), so NFR is
the side effect of adaptation a user sees. For LP itself both are 0 by construction. Reported on
ID test and every OOD split, with a few negative-flip examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.config import check_settings, count, setting
from safeadapt.results import StudySummary
from safeadapt.safety.base import EvalContext, Family, Score, register_family


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


@register_family("flips", order=110)
class Flips(Family):
    title = "Prediction flips vs the pretrained linear probe (negative / positive flip rate)"
    Config = FlipsConfig
    SCORES = {
        "negative_flip_rate": ("neg. flip rate vs LP (ID)", False, ".3f"),
        "ood_negative_flip_rate": ("neg. flip rate vs LP (OOD mean)", False, ".3f"),
    }

    def measure(self, ctx: EvalContext, config: FlipsConfig) -> dict[str, Any]:
        if not ctx.has_pretrained:
            return {"splits": {}}
        probe = ctx.pretrained_probe()
        splits = {}
        for name in ctx.eval_names:
            ref = probe.logits(ctx.pretrained_features(name)).argmax(1).numpy()
            new = ctx.logits(name).argmax(1).numpy()
            labels = ctx.labels(name)
            row: dict[str, Any] = flip_rates(ref, new, labels)
            neg = np.flatnonzero((ref == labels) & (new != labels))[: config.examples]
            row["negative_flip_examples"] = neg.tolist()
            splits[name] = row
        return {"reference": "plain LP on the pretrained backbone", "splits": splits}

    def scores(self, result: Mapping[str, Any]) -> dict[str, Score]:
        splits = result.get("splits", {})
        ood = [v["nfr"] for k, v in splits.items() if k.startswith("ood:")]
        values = {
            "negative_flip_rate": splits.get("test", {}).get("nfr"),
            "ood_negative_flip_rate": float(np.mean(ood)) if ood else None,
        }
        return {k: Score(v, *self.SCORES[k]) for k, v in values.items()}

    def figure(
        self, results: dict[str, list[Mapping[str, Any]]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Against the pretrained linear probe, per split: the share of examples adaptation
        fixed (up) and broke (down, the negative flip rate)."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        def get(r: Mapping[str, Any]) -> dict[str, float]:
            out = {}
            for k, v in r.get("splits", {}).items():
                out[f"{k} fixed"] = v["pfr"]
                out[f"{k} broken"] = -v["nfr"]
            return out

        data = mean_over_seeds(results, get)
        return bars(data, "flip rate (+ fixed, - broken)", zero_line=True) if data else None

"""Adversarial robustness: accuracy under an L-inf white-box attack at each epsilon -- PGD
(Madry et al. 2018) or FGSM (Goodfellow et al. 2015) -- on a capped, seeded ID-test sample.

Images are attacked in pixel space ([0, 1]); texts in the token-embedding space (epsilon in units
of the embedding table's std), which is an embedding-space attack, not a discrete text attack
(``safeadapt.metrics.robustness``). Measured on test examples, so it is reported and never used
for a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.config import (
    MAX_SAMPLE,
    check_settings,
    count,
    each,
    non_negative_number,
    one_of,
    setting,
)
from safeadapt.results import StudySummary
from safeadapt.safety.base import EvalContext, Family, SafetyResult, Score, register_family

SPACE = {"image": "pixel [0,1]", "text": "token embeddings (eps x embedding std)"}


@dataclass(frozen=True)
class AdversarialConfig:
    """Adversarial robustness: accuracy under an L-inf attack on the ID-test sample (text: on
    the token embeddings)."""

    method: str = setting("pgd", "the attack", one_of(("pgd", "fgsm")))
    eps: tuple[float, ...] | None = setting(
        None, "the attack budgets; null: per modality (image 0..8/255, text 0..0.1)",
        each(non_negative_number(), limit=100),
    )  # fmt: skip
    steps: int = setting(10, "PGD steps", count(1, 10_000))
    max_examples: int = setting(200, "the ID-test sample attacked", count(1, MAX_SAMPLE))

    def __post_init__(self) -> None:
        check_settings(self, "safety 'adversarial'")


def pooled_wilson(pairs: list[tuple[float | None, int | None]]) -> tuple | None:
    """Wilson interval of an accuracy measured on ``n`` examples per seed (``(accuracy, n)``
    per seed), pooled over seeds."""
    from safeadapt.metrics.intervals import wilson_interval

    if not pairs or any(v is None or not n for v, n in pairs):
        return None
    k = sum(round(v * n) for v, n in pairs)
    n = sum(n for _, n in pairs)
    return (*wilson_interval(int(k), int(n)), "wilson (pooled over seeds)")


@dataclass(frozen=True)
class AdversarialResult(SafetyResult):
    """Accuracy under attack per epsilon (keys: epsilon as text) on ``n`` ID-test examples,
    and its mean over the budgets above 0."""

    method: str
    space: str
    steps: int
    n: int
    accuracy: dict[str, float]
    mean_accuracy: float | None


@register_family("adversarial", order=30)
class Adversarial(Family):
    title = "Accuracy under an L-inf attack (PGD / FGSM) vs epsilon, on an ID-test sample"
    Config = AdversarialConfig
    Result = AdversarialResult
    SCORES = {"robust_accuracy": ("adv. acc", True, ".3f")}

    def measure(self, ctx: EvalContext, config: AdversarialConfig) -> AdversarialResult:
        from safeadapt.metrics.robustness import DEFAULT_EPS, robust_accuracy

        modality = ctx.task.modality
        sample = ctx.task.test.sample(config.max_examples, ctx.seed)
        accuracy = robust_accuracy(
            ctx.model,
            sample,
            config.eps or DEFAULT_EPS[modality],
            steps=config.steps,
            method=config.method,
            seed=ctx.seed,
        )
        attacked = [a for e, a in accuracy.items() if float(e) > 0]
        return AdversarialResult(
            method=config.method,
            space=SPACE[modality],
            steps=config.steps if config.method == "pgd" else 1,
            n=len(sample),
            accuracy={str(e): a for e, a in accuracy.items()},
            mean_accuracy=float(np.mean(attacked)) if attacked else None,
        )

    def scores(self, result: AdversarialResult) -> dict[str, Score]:
        return self.declared({"robust_accuracy": result.mean_accuracy})

    def intervals(self, results: list[AdversarialResult], outputs: Any) -> dict[str, tuple]:
        interval = pooled_wilson([(r.mean_accuracy, r.n) for r in results])
        return {} if interval is None else {"robust_accuracy": interval}

    def facts(self, result: AdversarialResult) -> list[str]:
        space = result.space
        tail = (
            " — an embedding-space attack, not a discrete text attack."
            if "embedding" in space
            else "."
        )
        return [
            f"Adversarial: {result.method} with {result.steps} steps on "
            f"{result.n} seeded ID-test examples, in {space}{tail}"
        ]

    def figure(
        self, results: dict[str, list[AdversarialResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Adversarial accuracy vs epsilon (mean over seeds) on the seeded ID-test sample."""
        from safeadapt.safety.figures import lines

        curves = {
            v: [{float(e): a for e, a in r.accuracy.items()} for r in rs if r.accuracy]
            for v, rs in results.items()
        }
        space = next((r.space for rs in results.values() for r in rs), "")
        return lines(curves, f"epsilon ({space})", "robust accuracy (ID test sample)")

"""The safety suite: the prediction metrics on every selection and evaluation split, then every
configured family (``safeadapt.safety``) on one shared :class:`EvalContext`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safeadapt.config import check_settings, count, each, one_of, setting
from safeadapt.evaluation import EvalContext, PerExample, score_splits
from safeadapt.metrics import METRICS
from safeadapt.safety.base import measure_families, resolve_families

CALIBRATION = ("ece", "ece_adaptive", "nll", "brier")


@dataclass(frozen=True)
class SafetyConfig:
    """The safety suite: the prediction metrics on every split, then the families."""

    metrics: tuple[str, ...] = setting(
        ("accuracy", *CALIBRATION), "prediction metrics scored on every split (safeadapt.metrics)",
        each(one_of(lambda: METRICS.names()), limit=100),
    )  # fmt: skip
    seed: int = setting(
        0, "the seed of every sampled budget (attack and corruption samples, reference tasks)",
        count(0),
    )  # fmt: skip
    families: Any = setting(
        None, "{family: settings or false}; every registered family runs at its defaults "
        "unless named here (safeadapt list <family> shows its settings)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self, "safety")
        object.__setattr__(self, "families", resolve_families(self.families))


@dataclass(frozen=True)
class SafetyEvaluation:
    """What ``evaluate_safety`` measured: the prediction metrics per evaluation split
    (``splits``) and on the selection splits (``selection``: ``val`` and ``ood-val:*``, the only
    numbers a choice may use), the ``logits`` of every labelled split, ``results`` -- as a run
    record stores them: one entry per family, ``backbone_passes`` per split and
    ``family_seconds`` -- and the families' ``per_example`` outputs."""

    splits: dict[str, dict[str, float]]
    selection: dict[str, dict[str, float]]
    logits: dict[str, Any]
    results: dict[str, Any]
    per_example: PerExample


def evaluate_safety(
    model,
    task,
    pretrained: Callable[[], Any] | Any | None = None,
    *,
    cache=None,
    frozen_backbone: bool = False,
    config: SafetyConfig | None = None,
    show_progress: bool = False,
) -> SafetyEvaluation:
    """The suite on ``model`` (a fitted ``Classifier``) and ``task``; ``pretrained`` is the
    pretrained backbone (or a factory) that distortion, forgetting, flips and the trend need."""
    config = config or SafetyConfig()
    ctx = EvalContext(
        model,
        task,
        pretrained=pretrained,
        cache=cache,
        frozen_backbone=frozen_backbone,
        seed=config.seed,
        show_progress=show_progress,
    )
    logits, report, selection = score_splits(ctx, config.metrics)
    return SafetyEvaluation(report, selection, logits, run_families(ctx, config),
                            ctx.per_example())  # fmt: skip


def run_families(ctx: EvalContext, config: SafetyConfig) -> dict[str, Any]:
    """Every configured family's result on ``ctx``, the backbone passes per split (1 for an
    adapted model, 0 when its features were cached) and each family's wall time: a run
    record's ``safety``."""
    results = dict(measure_families(ctx, config.families))
    return {**results, "backbone_passes": dict(ctx.passes), "family_seconds": dict(ctx.seconds)}

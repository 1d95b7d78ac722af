"""The safety suite: the prediction metrics on every selection and evaluation split, then every
configured family (``safeadapt.safety``) on one shared :class:`EvalContext`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safeadapt.config import check_settings, count, each, one_of, setting
from safeadapt.evaluation import EvalContext, score_splits
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


def evaluate_safety(
    model,
    task,
    pretrained: Callable[[], Any] | Any | None = None,
    *,
    cache=None,
    frozen_backbone: bool = False,
    config: SafetyConfig | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """The suite on ``model`` (a fitted ``Classifier``) and ``task``; ``pretrained`` is the
    pretrained backbone (or a factory) that distortion, forgetting, flips and the trend need.

    Returns ``splits`` (metrics per evaluation split), ``selection`` (the same on ``val`` and
    ``ood-val:*`` -- the only numbers a choice may use), ``logits`` of every labelled split and
    ``per_example`` (the families' columns and extra rows, for ``predictions.parquet``), beside
    one entry per family, ``backbone_passes`` per split and ``family_seconds`` (wall time)."""
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
    out: dict[str, Any] = {"splits": report, "selection": selection, "logits": logits}
    out.update(run_families(ctx, config))
    out["per_example"] = per_example(ctx)
    return out


def run_families(ctx: EvalContext, config: SafetyConfig) -> dict[str, Any]:
    """Every configured family's result on ``ctx``, the backbone passes per split (1 for an
    adapted model, 0 when its features were cached) and each family's wall time."""
    out: dict[str, Any] = dict(measure_families(ctx, config.families))
    out["backbone_passes"] = dict(ctx.passes)
    out["family_seconds"] = dict(ctx.seconds)
    return out


def per_example(ctx: EvalContext) -> dict[str, Any]:
    """The families' per-example columns and extra rows (for ``predictions.parquet``)."""
    return {"columns": ctx.columns, "rows": ctx.rows}

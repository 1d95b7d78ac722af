"""One run = one protocol, one seed, on one task: fit, evaluate, time. Plain values in and out."""

from __future__ import annotations

import dataclasses
import os
import platform
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from safeadapt.backbones.base import Backbone
from safeadapt.data.features import FeatureCache
from safeadapt.data.task import Task
from safeadapt.evaluation import SafetyConfig, evaluate, evaluate_safety
from safeadapt.metrics.cost import CostMeter, trainable_parameters
from safeadapt.protocols import FitContext, FitResult, Protocol


@dataclass
class RunRecord:
    """What a finished run reports (JSON-able)."""

    protocol: str
    seed: int
    metrics: dict[str, dict[str, float]]
    fit_seconds: float
    eval_seconds: float
    config: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    safety: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_seconds(self) -> float:
        return self.fit_seconds + self.eval_seconds

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "wall_seconds": self.wall_seconds}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment() -> dict[str, Any]:
    import safeadapt

    return {
        "safeadapt": safeadapt.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
    }


def run_protocol(
    protocol: Protocol,
    task: Task,
    backbone_factory: Callable[[], Backbone],
    seed: int = 0,
    *,
    cache: FeatureCache | None = None,
    metrics: Sequence[str] = ("accuracy",),
    safety: SafetyConfig | None = None,
    device: str = "auto",
    show_progress: bool = True,
) -> tuple[RunRecord, FitResult]:
    """Fit ``protocol`` on ``task`` with ``seed`` and evaluate it on ID test and every OOD split.

    With ``safety`` (a :class:`SafetyConfig`), the whole safety suite runs too (calibration,
    detection, feature distortion against a fresh pretrained backbone, adversarial accuracy).
    """
    cache = cache or FeatureCache()
    seed_everything(seed)
    ctx = FitContext(task, backbone_factory, seed, cache, device, show_progress)
    with CostMeter() as fit_cost:
        result = protocol.fit(ctx)
    safety_out: dict[str, Any] = {}
    with CostMeter() as eval_cost:
        if safety is None:
            scores = evaluate(
                result.model,
                task,
                metrics,
                cache=cache,
                frozen_backbone=result.frozen_backbone,
                show_progress=show_progress,
            )
        else:
            safety_out = evaluate_safety(
                result.model,
                task,
                backbone_factory,
                cache=cache,
                frozen_backbone=result.frozen_backbone,
                config=safety,
                show_progress=show_progress,
            )
            scores = safety_out.pop("splits")
    n_eval = sum(len(s) for s in task.eval_splits().values())
    trainable = result.info.get("trainable_parameters", trainable_parameters(result.model))
    record = RunRecord(
        protocol=protocol.name,
        seed=seed,
        metrics=scores,
        fit_seconds=fit_cost.seconds,
        eval_seconds=eval_cost.seconds,
        config=dataclasses.asdict(protocol.config),
        info=result.info,
        safety=safety_out,
        cost={
            "fit": fit_cost.result(len(task.train)),
            "eval": eval_cost.result(n_eval),
            "trainable_parameters": trainable,
        },
    )
    return record, result

"""Prediction metrics of a fitted model on a task's splits.

``evaluate`` scores metrics registered in ``safeadapt.metrics`` on ID test and each OOD split.
Features are computed once per split: a frozen-backbone model (LP) reads them from the cache
(keyed by a hash of its actual weights), an adapted model's are extracted. The safety suite is
``safeadapt.safety`` (``evaluate_safety``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from safeadapt.data.features import FeatureCache, features_of
from safeadapt.data.task import Task
from safeadapt.metrics import METRICS
from safeadapt.model import Classifier


def split_features(
    model: Classifier,
    task: Task,
    splits: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """The model's backbone features ``(N, D)`` on the named splits (far-OOD sets included)."""
    all_splits = task.splits(far=True)
    return {
        name: features_of(
            model,
            all_splits[name],
            cache=cache,
            frozen_backbone=frozen_backbone,
            show_progress=show_progress,
        )
        for name in splits
    }


@torch.no_grad()
def head_logits(model: Classifier, features: dict[str, Tensor]) -> dict[str, Tensor]:
    w = model.head.weight.detach().float().cpu()
    b = model.head.bias.detach().float().cpu()
    return {k: v.float() @ w.T + b for k, v in features.items()}


def score(
    logits: dict[str, Tensor], task: Task, metrics: Sequence[str] = ("accuracy",)
) -> dict[str, dict[str, float]]:
    """``{split: {metric: value}}`` from precomputed logits."""
    fns = {m: METRICS.get(m) for m in metrics}
    splits = task.splits()
    return {
        name: {m: fn(lg, torch.from_numpy(splits[name].labels)) for m, fn in fns.items()}
        for name, lg in logits.items()
    }


def split_logits(
    model: Classifier,
    task: Task,
    names: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """The model's logits on the named splits of ``task`` (features cached when frozen)."""
    feats = split_features(
        model,
        task,
        list(names),
        cache=cache,
        frozen_backbone=frozen_backbone,
        show_progress=show_progress,
    )
    return head_logits(model, feats)


def evaluate(
    model: Classifier,
    task: Task,
    metrics: Sequence[str] = ("accuracy",),
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Every metric on ID test and every OOD split of ``task``."""
    logits = split_logits(
        model,
        task,
        list(task.eval_splits()),
        cache=cache,
        frozen_backbone=frozen_backbone,
        show_progress=show_progress,
    )
    return score(logits, task, metrics)

"""Evaluation: logits on ID test and every OOD split, then every requested metric on each.

Frozen-backbone models (LP) are scored from the feature cache, so evaluating an LP run costs one
matrix product per split.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from safeadapt.data.features import FeatureCache
from safeadapt.data.task import Task
from safeadapt.metrics import METRICS
from safeadapt.model import Classifier
from safeadapt.protocols.train_loop import predict_logits


def split_logits(
    model: Classifier,
    task: Task,
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    batch_size: int = 128,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """Logits ``(N, K)`` per evaluated split (``test`` and ``ood:<name>``)."""
    out = {}
    for name, split in task.eval_splits().items():
        if frozen_backbone and cache is not None:
            feats = cache.get(model.backbone, split, show_progress=show_progress)["features"]
            with torch.no_grad():
                out[name] = model.head(feats.to(model.head.weight.device)).float().cpu()
        else:
            out[name] = predict_logits(model, split, batch_size, show_progress)
    return out


def score(
    logits: dict[str, Tensor], task: Task, metrics: Sequence[str] = ("accuracy",)
) -> dict[str, dict[str, float]]:
    """``{split: {metric: value}}`` from precomputed logits."""
    fns = {m: METRICS.get(m) for m in metrics}
    splits = task.eval_splits()
    return {
        name: {m: fn(lg, torch.from_numpy(splits[name].labels)) for m, fn in fns.items()}
        for name, lg in logits.items()
    }


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
        model, task, cache=cache, frozen_backbone=frozen_backbone, show_progress=show_progress
    )
    return score(logits, task, metrics)

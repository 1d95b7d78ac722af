"""Linear probing (LP): the backbone stays frozen; the one linear probe of ``safeadapt.linear``
(logistic regression on cached features, C chosen on validation) is the head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from safeadapt.linear import LinearHead, ProbeConfig, fit_linear_probe
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol


@dataclass(frozen=True)
class LPConfig(ProbeConfig):
    """The linear probe's settings (``safeadapt.linear.ProbeConfig``) as the LP protocol's."""

    WHERE: ClassVar[str] = "protocol 'lp'"


def cached_split_features(ctx: FitContext, backbone) -> tuple[Tensor, Tensor]:
    """The frozen ``backbone``'s features of the task's train and val splits (cached)."""
    return tuple(  # type: ignore[return-value]
        ctx.cache.get(backbone, split, show_progress=ctx.show_progress).features
        for split in (ctx.task.train, ctx.task.val)
    )


def linear_probe_head(ctx: FitContext, backbone, config: LPConfig) -> LinearHead:
    """The LP head of ``backbone`` on ``ctx.task`` from cached features."""
    train, val = cached_split_features(ctx, backbone)
    task = ctx.task
    return fit_linear_probe(
        train,
        torch.from_numpy(task.train.labels),
        val,
        torch.from_numpy(task.val.labels),
        task.num_classes,
        config,
    )


@register_protocol("lp")
class LinearProbe(Protocol):
    """Linear probing: the backbone stays frozen, only a linear head is fitted (on cached features)."""

    Config = LPConfig

    def fit(self, ctx: FitContext) -> FitResult:
        backbone = ctx.backbone_factory()
        head = linear_probe_head(ctx, backbone, self.config)
        model = Classifier.from_head(backbone, head.weight, head.bias).eval()
        info = {
            "C": head.C,
            "val_accuracy": head.val_accuracy,
            "lp_sweep": head.sweep,
            "trainable_parameters": head.weight.numel() + head.bias.numel(),
        }
        return FitResult(model, frozen_backbone=True, info=info)

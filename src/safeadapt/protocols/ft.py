"""Full fine-tuning (FT): every backbone weight and a randomly initialised head are trained."""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.config import nested_setting
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol
from safeadapt.protocols.train_config import Optimizer, TrainConfig
from safeadapt.protocols.train_loop import finetune_in_context


@dataclass(frozen=True)
class FTConfig(TrainConfig):
    lr: float = 2e-5
    # the random head needs a larger step than the backbone
    optimizer: Optimizer = nested_setting(Optimizer, default=Optimizer(head_lr=1e-3))


@register_protocol("ft")
class FineTune(Protocol):
    """Full fine-tuning from a random head (AdamW, warmup + cosine, early stopping on val)."""

    Config = FTConfig

    def fit(self, ctx: FitContext) -> FitResult:
        import torch

        torch.manual_seed(ctx.seed)  # the random head depends on the seed
        model = Classifier(ctx.backbone_factory(), ctx.task.num_classes)
        info = finetune_in_context(model, ctx, self.config)
        return FitResult(model, frozen_backbone=False, info=info)

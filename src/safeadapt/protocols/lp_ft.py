"""LP-FT (Kumar et al., ICLR 2022): fit an LP head on frozen features, then fine-tune everything
starting from that head with a smaller learning rate, so the backbone's features are distorted less
(the head is already good; early gradients do not wreck the features to fit a random head)."""

from __future__ import annotations

from dataclasses import dataclass, field

from safeadapt.config import build_config
from safeadapt.linear import LinearHead
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol
from safeadapt.protocols.lp import LPConfig, linear_probe_head
from safeadapt.protocols.train_loop import TrainConfig, finetune_in_context


@dataclass(frozen=True)
class LPFTConfig(TrainConfig):
    lr: float = 1e-5
    head_lr: float | None = None  # same as lr: the head starts good
    lp: LPConfig = field(default_factory=LPConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.lp, LPConfig):
            object.__setattr__(self, "lp", build_config(LPConfig, self.lp, "protocol 'lp-ft' 'lp'"))


@register_protocol("lp-ft")
class LPThenFT(Protocol):
    """LP head as initialisation, then full fine-tuning at a smaller learning rate."""

    Config = LPFTConfig

    def initial_head(self, ctx: FitContext, backbone) -> LinearHead:
        """The head fine-tuning starts from (hardened variants override this)."""
        return linear_probe_head(ctx, backbone, self.config.lp)

    def start(self, ctx: FitContext) -> tuple[Classifier, LinearHead]:
        """A fresh pretrained backbone with the initial head: where fine-tuning begins."""
        backbone = ctx.backbone_factory()
        head = self.initial_head(ctx, backbone)
        return Classifier.from_head(backbone, head.weight, head.bias), head

    def fit(self, ctx: FitContext) -> FitResult:
        model, head = self.start(ctx)
        info = finetune_in_context(model, ctx, self.config)
        info.update({"lp_C": head.C, "lp_val_accuracy": head.val_accuracy})
        if head.effect is not None:
            info["head_effect"] = head.effect
        artifacts = {"lp_head": {"weight": head.weight, "bias": head.bias}}
        return FitResult(model, frozen_backbone=False, info=info, artifacts=artifacts)

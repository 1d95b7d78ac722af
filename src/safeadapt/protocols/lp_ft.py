"""LP-FT (Kumar et al., ICLR 2022): fit an LP head on frozen features, then fine-tune everything
starting from that head with a smaller learning rate, so the backbone's features are distorted less
(the head is already good; early gradients do not wreck the features to fit a random head)."""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.config import build_config, check_settings, each, one_of, setting, template
from safeadapt.linear import LinearHead
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol
from safeadapt.protocols.lp import LPConfig, linear_probe_head
from safeadapt.protocols.train_config import TrainConfig
from safeadapt.protocols.train_loop import finetune_in_context
from safeadapt.protocols.zero_shot import PROMPT_LIMIT

HEAD_INITS = ("lp", "zero-shot")


@dataclass(frozen=True)
class LPFTConfig(TrainConfig):
    """LP-FT (Kumar et al., ICLR 2022): a head fitted first, then fine-tuning from it at a smaller
    learning rate (the training settings are FT's)."""

    lr: float = 1e-5  # the head starts good: one learning rate for both (head_lr null)
    lp: LPConfig = setting(
        doc="the first stage's linear probe (c_grid, max_iter, standardize, tol)",
        factory=LPConfig,
    )
    head_init: str = setting(
        "lp", "the starting head: lp (a linear probe) or zero-shot (a CLIP / SigLIP text head)",
        one_of(HEAD_INITS),
    )  # fmt: skip
    prompts: tuple[str, ...] = setting(
        ("a photo of a {}.",), "head_init zero-shot: the prompt templates, averaged per class",
        each(template(), limit=PROMPT_LIMIT),
    )  # fmt: skip

    def __post_init__(self) -> None:
        if not isinstance(self.lp, LPConfig):
            object.__setattr__(self, "lp", build_config(LPConfig, self.lp, "protocol 'lp-ft' 'lp'"))
        check_settings(self, "training")


@register_protocol("lp-ft")
class LPThenFT(Protocol):
    """LP head as initialisation, then full fine-tuning at a smaller learning rate."""

    Config = LPFTConfig

    def initial_head(self, ctx: FitContext, backbone) -> LinearHead:
        """The head fine-tuning starts from (hardened variants override this)."""
        if self.config.head_init == "zero-shot":
            from safeadapt.protocols.zero_shot import zero_shot_linear_head

            return zero_shot_linear_head(ctx, backbone, self.config.prompts)
        return linear_probe_head(ctx, backbone, self.config.lp)

    def start(self, ctx: FitContext) -> tuple[Classifier, LinearHead]:
        """A fresh pretrained backbone with the initial head: where fine-tuning begins."""
        backbone = ctx.backbone_factory()
        head = self.initial_head(ctx, backbone)
        return Classifier.from_head(backbone, head.weight, head.bias), head

    def fit(self, ctx: FitContext) -> FitResult:
        model, head = self.start(ctx)
        info = finetune_in_context(model, ctx, self.config)
        if self.config.head_init == "zero-shot":
            info.update({"head_init": "zero-shot", "start_val_accuracy": head.val_accuracy})
        else:
            info.update({"lp_C": head.C, "lp_val_accuracy": head.val_accuracy})
        if head.effect is not None:
            info["head_effect"] = head.effect
        artifacts = {"lp_head": {"weight": head.weight, "bias": head.bias}}
        return FitResult(model, frozen_backbone=False, info=info, artifacts=artifacts)

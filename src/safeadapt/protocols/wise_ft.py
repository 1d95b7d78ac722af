"""WiSE-FT (Wortsman et al., CVPR 2022): interpolate pretrained and fine-tuned weights.

``theta(alpha) = (1 - alpha) * theta_0 + alpha * theta_ft`` for the backbone *and* the head,
where ``theta_0`` is the pretrained backbone with its starting head -- the LP head by default
(the packaged backbones have no text tower), the paper's zero-shot head with a CLIP / SigLIP
backbone and ``head_init: zero-shot`` -- and ``theta_ft`` the LP-FT result from that start. ``alpha`` is chosen on the ID validation split only; the whole curve is
reported (``info["alpha_curve"]``) with, where the task has them, the OOD-validation accuracies
at every alpha beside it (shown, never used for the choice).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from safeadapt.config import each, interval, require, setting
from safeadapt.data.task import Split
from safeadapt.merge import interpolate
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, register_protocol
from safeadapt.protocols.lp_ft import LPFTConfig, LPThenFT
from safeadapt.protocols.train_loop import finetune_in_context, predict_logits
from safeadapt.results.fit_info import AlphaPoint


@dataclass(frozen=True)
class WiSEFTConfig(LPFTConfig):
    """WiSE-FT (Wortsman et al., CVPR 2022): the fine-tuned weights interpolated with the start's,
    the mixing alpha chosen on validation (the training settings are LP-FT's)."""

    alphas: tuple[float, ...] = setting(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        "the mixing weights tried (0: the start, 1: the fine-tuned model); best on validation",
        each(interval(0, 1, closed_high=True), limit=1_000),
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.tune.name != "lora" or self.tune.merge,
            "protocol 'wise-ft' needs the fine-tuned model in the pretrained model's shape: "
            "with tune 'lora' keep 'merge: true' (tune: {lora: {merge: true}}).",
        )


def split_accuracy(model: Classifier, split: Split, batch_size: int) -> float:
    logits = predict_logits(model, split, batch_size)
    return float((logits.argmax(1) == torch.from_numpy(split.labels)).float().mean())


@register_protocol("wise-ft")
class WiSEFT(LPThenFT):
    """LP-FT, then the weight-space ensemble with the pretrained model + LP head, alpha on val."""

    Config = WiSEFTConfig

    def fit(self, ctx: FitContext) -> FitResult:
        model, head = self.start(ctx)
        bs = self.config.eval_batch_size
        theta0 = copy.deepcopy(model.state_dict())
        info = finetune_in_context(model, ctx, self.config)
        theta1 = copy.deepcopy(model.state_dict())
        curve = []
        for alpha in sorted(self.config.alphas):
            model.load_state_dict(interpolate(theta0, theta1, alpha))
            val = split_accuracy(model, ctx.task.val, bs)
            ood = {n: split_accuracy(model, s, bs) for n, s in ctx.task.ood_val.items()}
            curve.append(AlphaPoint(alpha, val, ood))  # OOD val: reported beside, never chosen on
        best = max(curve, key=lambda c: (c.val_accuracy, c.alpha))  # ties: closer to FT
        model.load_state_dict(interpolate(theta0, theta1, best.alpha))
        model.eval()
        info.update(
            {
                "alpha": best.alpha,
                "alpha_curve": [p.to_json() for p in curve],
                "head_init": self.config.head_init,
                f"{'lp' if self.config.head_init == 'lp' else 'start'}_val_accuracy": (
                    head.val_accuracy
                ),
            }
        )
        return FitResult(model, frozen_backbone=False, info=info)

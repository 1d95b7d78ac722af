"""Zero-shot classification with a CLIP / SigLIP pair (Radford et al. 2021): the head is built from
the class names through the text tower (``safeadapt.backbones.hf_vision.zero_shot_head``), nothing
is trained. It is also the start of LP-FT / WiSE-FT with ``head_init: zero-shot`` -- the setting of
the WiSE-FT (Wortsman et al. 2022) and LP-FT (Kumar et al. 2022) papers, where theta_0 is the
zero-shot model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safeadapt.config import check_settings, each, setting, template
from safeadapt.errors import InvalidConfig
from safeadapt.linear import LinearHead
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol

PROMPTS = ("a photo of a {}.",)
PROMPT_LIMIT = 1_000  # templates per class, bounded before any is encoded


@dataclass(frozen=True)
class ZeroShotConfig:
    """A CLIP / SigLIP text head: each class's prompts encoded and averaged."""

    prompts: tuple[str, ...] = setting(
        PROMPTS, "templates with '{}' for the class name, averaged per class",
        each(template(), limit=PROMPT_LIMIT),
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self, "protocol 'zero-shot'")


def zero_shot_linear_head(ctx: FitContext, backbone, prompts) -> LinearHead:
    """The zero-shot head as a :class:`LinearHead`, with its accuracy on the cached val features."""
    from safeadapt.backbones.hf_vision import zero_shot_head

    if not hasattr(backbone, "source") or getattr(backbone, "pooling", None) != "embeds":
        raise InvalidConfig(
            "a zero-shot head needs a CLIP / SigLIP backbone from Hugging Face "
            "(backbone: {name: 'hf:<clip id or folder>'}, pooling auto or 'embeds')."
        )
    weight, bias = zero_shot_head(backbone, ctx.task.label_names, prompts)
    val = ctx.cache.get(backbone, ctx.task.val, show_progress=ctx.show_progress).features
    logits = val.float() @ weight.T + bias
    labels = torch.from_numpy(ctx.task.val.labels)
    acc = float((logits.argmax(1) == labels).float().mean())
    nll = float(torch.nn.functional.cross_entropy(logits, labels))
    return LinearHead(
        weight, bias, 0.0, acc, nll, [], {"method": "zero-shot", "prompts": list(prompts)}
    )


@register_protocol("zero-shot")
class ZeroShot(Protocol):
    """The pair's zero-shot classifier from the class names; the backbone stays as it is."""

    Config = ZeroShotConfig

    def fit(self, ctx: FitContext) -> FitResult:
        backbone = ctx.backbone_factory()
        head = zero_shot_linear_head(ctx, backbone, self.config.prompts)
        model = Classifier.from_head(backbone, head.weight, head.bias).eval()
        info = {
            "prompts": list(self.config.prompts),
            "val_accuracy": head.val_accuracy,
            "trainable_parameters": 0,
        }
        return FitResult(model, frozen_backbone=True, info=info)

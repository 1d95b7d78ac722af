"""Backbones: the interface, a registry of loaders and ``load_backbone``.

``load_backbone("minilm")`` (packaged text default), ``load_backbone("efficientnet-lite0")``
(packaged vision default), ``load_backbone("hf:<hub id or local folder>")`` for any Hugging Face
AutoModel, or wrap any ``torch.nn.Module`` with :class:`TorchModuleBackbone`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safeadapt._registry import Registry
from safeadapt.backbones.base import Backbone
from safeadapt.backbones.torch_module import TorchModuleBackbone

BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")
DEFAULT_BACKBONE = {"text": "minilm", "image": "efficientnet-lite0"}


@BACKBONES.register("minilm")
def _minilm(**options: Any) -> Backbone:
    from safeadapt.backbones.huggingface import load_minilm

    return load_minilm(**options)


@BACKBONES.register("efficientnet-lite0")
def _efficientnet_lite0(**options: Any) -> Backbone:
    from safeadapt.backbones.efficientnet import load_efficientnet_lite0

    return load_efficientnet_lite0(**options)


def load_backbone(spec: str, **options: Any) -> Backbone:
    """A fresh pretrained backbone in eval mode (wrapper and every submodule alike, so feature
    extraction, which restores the mode it found, never switches dropout on).
    ``spec``: a registered name or ``hf:<id or path>``."""
    if spec.startswith("hf:"):
        from safeadapt.backbones.huggingface import load_hf_text

        return load_hf_text(spec[3:], **options).eval()
    return BACKBONES.get(spec)(**options).eval()


__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "Backbone", "TorchModuleBackbone", "load_backbone"]

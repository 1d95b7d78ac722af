"""Backbones: the interface, a registry of loaders and ``load_backbone``.

``load_backbone("minilm")`` (packaged text default), ``load_backbone("efficientnet-lite0")``
(packaged vision default), ``load_backbone("hf:<hub id or local folder>")`` for any Hugging Face
text model (AutoModel + AutoTokenizer) or vision model (ViT, DeiT, DINOv2, ConvNeXt, Swin, the
CLIP / SigLIP vision towers; ``safeadapt.backbones.hf_vision``), with ``revision`` and
``trust_remote_code`` (off unless asked), or wrap any ``torch.nn.Module`` with
:class:`TorchModuleBackbone`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from safeadapt._registry import Registry
from safeadapt.backbones.base import Backbone, MaxLength
from safeadapt.backbones.efficientnet import EfficientNetSize
from safeadapt.backbones.huggingface import TextPooling
from safeadapt.backbones.sources import SOURCES, Source, check_options, source_of
from safeadapt.backbones.torch_module import TorchModuleBackbone

for _module in pkgutil.iter_modules(__path__):  # each ``*_source`` module registers its source
    if _module.name.endswith("_source"):
        importlib.import_module(f"{__name__}.{_module.name}")

BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")
DEFAULT_BACKBONE = {"text": "minilm", "image": "efficientnet-lite0"}
# built-ins whose weights are a Hugging Face Hub model (an export's model card names it)
BUILTIN_BASE_MODELS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


@BACKBONES.register("minilm")
def _minilm(max_length: MaxLength = 128, pooling: TextPooling = "mean") -> Backbone:
    """all-MiniLM-L6-v2, shipped in the package (text). ``max_length``: tokens kept per text;
    ``pooling``: 'mean' over tokens, 'cls' or 'pooler'."""
    from safeadapt.backbones.huggingface import load_minilm

    return load_minilm(max_length=max_length, pooling=pooling)


@BACKBONES.register("efficientnet-lite0")
def _efficientnet_lite0(image_size: EfficientNetSize = 224) -> Backbone:
    """EfficientNet-Lite0 with ImageNet weights, shipped in the package (images).
    ``image_size``: the side images are resized to."""
    from safeadapt.backbones.efficientnet import load_efficientnet_lite0

    return load_efficientnet_lite0(image_size=image_size)


def load_backbone(
    spec: str,
    weights: str | None = None,
    precision: str = "fp32",
    *,
    trust_code: bool | None = None,
    **options: Any,
) -> Backbone:
    """A fresh pretrained backbone in eval mode (wrapper and every submodule alike, so feature
    extraction, which restores the mode it found, never switches dropout on).
    ``spec``: a registered name or ``hf:<id or path>``. ``weights``: a safetensors file to load
    into it -- a backbone state, or a model a study saved (``runs/<id>/model.safetensors``, whose
    backbone part is taken) -- e.g. a backbone adapted by an earlier study. ``precision``:
    ``"fp32"``, or ``"bf16"`` for extraction and evaluation passes (``Backbone.precision``).
    ``trust_code``: whether a ``module:`` builder or a Hugging Face model's own code
    (``trust_remote_code: true``) may run; ``None`` asks :mod:`safeadapt.trust` (refused unless
    the person running the command allowed it)."""
    check_code_trust(spec, options, trust_code)
    source = source_of(spec)
    if source is not None:
        backbone = source.load(spec, options)
    else:
        loader = BACKBONES.get(spec)
        check_options(loader, options, spec)
        backbone = loader(**options)
    if weights is not None:
        load_weights(backbone, weights)
    return backbone.set_precision(precision).eval()


def base_model(spec: str) -> str | None:
    """The Hub id of the model the backbone ``spec`` started from (its source's or the
    built-in's), or None."""
    source = source_of(spec)
    return source.base_model(spec) if source is not None else BUILTIN_BASE_MODELS.get(spec)


def check_code_trust(spec: str, options: dict[str, Any], trust_code: bool | None = None) -> None:
    """Refuse a backbone that runs code named by the input unless it is allowed
    (:mod:`safeadapt.trust`): its source says when it does (``module:`` builders,
    ``trust_remote_code: true``)."""
    from safeadapt.trust import refuse

    source = source_of(spec)
    reason = source.runs_code(spec, options) if source is not None else None
    if reason and not trust_code:
        refuse(reason)


def load_weights(backbone: Backbone, path: str) -> None:
    """Load a safetensors file into ``backbone`` (strict: every tensor must match): a backbone's
    own state, or a whole model a study saved (``runs/<id>/model.safetensors``), whose backbone
    part is taken after checking its checksum and the backbone it was saved from."""
    import json
    from pathlib import Path

    from safeadapt.errors import CheckpointError
    from safeadapt.files import load_state, read_safetensors

    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"backbone 'weights': {file} does not exist.")
    try:
        tensors, meta = read_safetensors(file)
    except Exception as err:
        raise CheckpointError(
            f"backbone 'weights': {file} is not a readable safetensors file ({err})."
        ) from err
    if "num_classes" in meta:  # a whole model saved by a study: keep its backbone
        saved = json.loads(meta.get("backbone", "{}")).get("name")
        if saved and saved != backbone.config().get("name"):
            raise CheckpointError(
                f"backbone 'weights': {file} was saved from backbone {saved!r}, not "
                f"{backbone.config().get('name')!r}."
            )
        tensors = {
            k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")
        }
    try:
        missing, unexpected = load_state(backbone, tensors)
    except RuntimeError as err:  # a shape mismatch
        raise CheckpointError(f"backbone 'weights': {file} could not be loaded ({err}).") from err
    if missing or unexpected:
        raise CheckpointError(
            f"backbone 'weights': {file} does not match this backbone: missing "
            f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}."
        )


__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "SOURCES",
    "Backbone",
    "Source",
    "TorchModuleBackbone",
    "base_model",
    "load_backbone",
]

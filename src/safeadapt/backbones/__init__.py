"""Backbones: the interface, a registry of loaders and ``load_backbone``.

``load_backbone("minilm")`` (packaged text default), ``load_backbone("efficientnet-lite0")``
(packaged vision default), ``load_backbone("hf:<hub id or local folder>")`` for any Hugging Face
text model (AutoModel + AutoTokenizer) or vision model (ViT, DeiT, DINOv2, ConvNeXt, Swin, the
CLIP / SigLIP vision towers; ``safeadapt.backbones.hf_vision``), with ``revision`` and
``trust_remote_code`` (off unless asked), or wrap any ``torch.nn.Module`` with
:class:`TorchModuleBackbone`.
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
def _minilm(max_length: int = 128, pooling: str = "mean") -> Backbone:
    from safeadapt.backbones.huggingface import load_minilm

    return load_minilm(max_length=max_length, pooling=pooling)


@BACKBONES.register("efficientnet-lite0")
def _efficientnet_lite0(image_size: int = 224) -> Backbone:
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
    if spec.startswith("hf:"):
        from safeadapt.backbones.hf_vision import load_hf_vision
        from safeadapt.backbones.huggingface import is_vision, load_hf_text

        model_id = spec[3:]
        hub = {k: options[k] for k in ("revision", "trust_remote_code") if k in options}
        loader = load_hf_vision if is_vision(model_id, **hub) else load_hf_text
        _check_options(loader, options, spec, skip=("model_id",))
        backbone = loader(model_id, **options)
    elif spec.startswith("module:"):
        backbone = _from_module(spec, options)
    else:
        loader = BACKBONES.get(spec)
        _check_options(loader, options, spec)
        backbone = loader(**options)
    if weights is not None:
        load_weights(backbone, weights)
    return backbone.set_precision(precision).eval()


def check_code_trust(spec: str, options: dict[str, Any], trust_code: bool | None = None) -> None:
    """Refuse a backbone that runs code named by the input unless it is allowed
    (:mod:`safeadapt.trust`): ``module:`` builders and ``trust_remote_code: true``."""
    from safeadapt.trust import refuse

    if trust_code:
        return
    if spec.startswith("module:"):
        refuse(f"backbone {spec!r} imports and runs your own Python code")
    elif spec.startswith("hf:") and options.get("trust_remote_code"):
        refuse(f"backbone {spec!r} with 'trust_remote_code: true' runs the model's own Python code")


def split_module_spec(spec: str) -> tuple[str, str]:
    """``module:<package.module>:<function>`` -> (module, function), or a one-line error."""
    from safeadapt.errors import InvalidConfig

    module_name, _, function = spec.removeprefix("module:").partition(":")
    names = [*module_name.split("."), function]
    if not module_name or not function or not all(n.isidentifier() for n in names):
        raise InvalidConfig(
            f"backbone {spec!r}: write module:<package.module>:<function>, e.g. "
            "module:my_models:make_backbone."
        )
    return module_name, function


def find_module(spec: str) -> None:
    """Check that a ``module:`` spec's module can be found -- without importing it or its
    packages (so nothing of it runs): the folder the command runs in, then ``sys.path``."""
    import importlib.machinery
    import os
    import sys

    from safeadapt.errors import InvalidConfig

    module_name, _ = split_module_spec(spec)
    parts = module_name.split(".")
    search: list[str] | None = [os.getcwd(), *sys.path]
    for i, part in enumerate(parts):
        if i == 0 and part in sys.builtin_module_names and len(parts) == 1:
            return
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if found is None:
            raise InvalidConfig(
                f"backbone {spec!r}: no module {'.'.join(parts[: i + 1])!r} in the current folder "
                "or on PYTHONPATH; run the command from the folder that holds it, or add its "
                "folder to PYTHONPATH."
            )
        search = list(found.submodule_search_locations or [])
        if not search and i < len(parts) - 1:
            raise InvalidConfig(f"backbone {spec!r}: {part!r} is a module, not a package.")


def _from_module(spec: str, options: dict[str, Any]) -> Backbone:
    """``module:<package.module>:<function>``: your own code builds the backbone (e.g. a timm
    model wrapped in :class:`TorchModuleBackbone`); ``options`` are its keyword arguments."""
    import importlib
    import os
    import sys

    from safeadapt.errors import InvalidConfig

    module_name, function = split_module_spec(spec)
    here = os.getcwd()
    added = here not in sys.path  # like `python -m`: the folder the command runs in comes first
    if added:
        sys.path.insert(0, here)
    try:
        builder = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise InvalidConfig(
            f"backbone {spec!r} could not be imported: {err}. Run the command from the folder "
            "that holds the module, or add its folder to PYTHONPATH."
        ) from None
    finally:
        if added and here in sys.path:
            sys.path.remove(here)
    _check_options(builder, options, spec)
    backbone = builder(**options)
    if not isinstance(backbone, Backbone):
        raise InvalidConfig(
            f"backbone {spec!r} returned a {type(backbone).__name__}, not a safeadapt Backbone: "
            "wrap a torch module with safeadapt.TorchModuleBackbone(module, feature_dim=...)."
        )
    return backbone


def load_weights(backbone: Backbone, path: str) -> None:
    """Load a safetensors file into ``backbone`` (strict: every tensor must match): a backbone's
    own state, or a whole model a study saved (``runs/<id>/model.safetensors``), whose backbone
    part is taken after checking its checksum and the backbone it was saved from."""
    import json
    from pathlib import Path

    from safeadapt.errors import CheckpointError
    from safeadapt.files import read_safetensors

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
        missing, unexpected = backbone.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # a shape mismatch
        raise CheckpointError(f"backbone 'weights': {file} could not be loaded ({err}).") from err
    state = backbone.state_dict(keep_vars=True)
    loaded = {state[k].data_ptr() for k in tensors if k in state}
    missing = [k for k in missing if state[k].data_ptr() not in loaded]  # tied to a loaded one
    if missing or unexpected:
        raise CheckpointError(
            f"backbone 'weights': {file} does not match this backbone: missing "
            f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}."
        )


def _check_options(loader: Any, options: dict[str, Any], spec: str, skip=()) -> None:
    """Options must be parameters of the loader: one line naming the accepted ones."""
    import inspect

    from safeadapt.errors import InvalidConfig

    accepted = [p for p in inspect.signature(loader).parameters if p not in skip]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise InvalidConfig(
            f"backbone {spec!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(accepted) or 'none'}."
        )


__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "Backbone", "TorchModuleBackbone", "load_backbone"]

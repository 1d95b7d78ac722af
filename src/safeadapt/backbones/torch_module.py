"""Any ``torch.nn.Module`` as a backbone (timm models, custom networks), given a feature function.

Example (a timm user)::

    net = timm.create_model("resnet18", pretrained=True, num_classes=0)
    bb = TorchModuleBackbone(net, feature_dim=512, modality="image", image_size=224,
                             mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                             layers=("layer1", "layer2", "layer3", "layer4"))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from safeadapt.backbones.base import Backbone, Batch, as_tokens, capture_outputs, pool
from safeadapt.backbones.images import images_to_pixels
from safeadapt.errors import InvalidConfig


class TorchModuleBackbone(Backbone):
    """Wraps ``module``; features are ``feature_fn(module, model_input)`` (default ``module(x)``).

    ``layers`` are names from ``module.named_modules()`` whose outputs are pooled on request.
    Image inputs are resized to ``image_size`` and normalised with ``mean`` / ``std``; other inputs
    go through ``preprocess_fn`` (raw inputs -> dict with key ``"x"``).
    """

    def __init__(
        self,
        module: nn.Module,
        feature_dim: int,
        modality: str = "image",
        *,
        name: str = "torch-module",
        feature_fn: Callable[[nn.Module, Tensor], Tensor] | None = None,
        preprocess_fn: Callable[[Sequence[Any]], dict[str, Tensor]] | None = None,
        image_size: int = 224,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        layers: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if modality not in ("text", "image"):
            raise InvalidConfig(f"'modality' must be 'text' or 'image'; got {modality!r}.")
        if modality == "text" and preprocess_fn is None:
            raise InvalidConfig("A text TorchModuleBackbone needs a 'preprocess_fn' (a tokenizer).")
        known = dict(module.named_modules())
        missing = [n for n in layers if n not in known]
        if missing:
            raise InvalidConfig(f"'layers': module has no submodule {missing[0]!r}.")
        self.module = module
        self.name = name
        self.modality = modality
        self._feature_dim = feature_dim
        self.feature_fn = feature_fn
        self.preprocess_fn = preprocess_fn
        self.image_size = image_size
        self._layers = tuple(layers)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self._layers

    def config(self) -> dict[str, Any]:
        fn = self.feature_fn
        code = hashlib.sha256(fn.__code__.co_code).hexdigest()[:16] if fn is not None else None
        return {"name": self.name, "image_size": self.image_size, "feature_fn": code}

    def preprocess(self, inputs: Sequence[Any]) -> dict[str, Tensor]:
        if self.preprocess_fn is not None:
            return self.preprocess_fn(inputs)
        return {"pixels": images_to_pixels(np.asarray(inputs), self.image_size)}

    def forward_layers(
        self, batch: Batch, layers: Sequence[str], pooled: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.check_layers(layers)
        if "pixels" in batch:
            x = (batch["pixels"] - self.mean) / self.std
        else:
            x = batch["x"]
        with capture_outputs(self.module, layers) as store:
            feats = self.feature_fn(self.module, x) if self.feature_fn else self.module(x)
        if feats.ndim != 2 or feats.shape[1] != self._feature_dim:
            feats = pool(feats)
        if feats.shape[1] != self._feature_dim:
            raise InvalidConfig(
                f"'feature_dim' is {self._feature_dim} but the module gives features of "
                f"{feats.shape[1]} dimensions."
            )
        read = pool if pooled else as_tokens
        return feats, {n: read(store[n]) for n in layers}

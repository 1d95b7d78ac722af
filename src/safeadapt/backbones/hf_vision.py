"""Vision backbones from Hugging Face ``transformers``: ViT, DeiT, DINOv2, ConvNeXt, Swin, and the
vision towers of CLIP and SigLIP, from a hub id or a local folder.

Preprocessing follows the model's image processor (``preprocessor_config.json``): its
normalisation mean / std and its size, applied here in plain torch to a square image (resize, no
centre crop), with the normalisation inside the forward pass so attacks and corruptions work in
pixel space. Without a processor file, ``config.image_size`` and mean = std = 0.5 are used (and
``config()`` says so).

Features (``pooling``): ``pooler`` -- the model's own pooled output (DINOv2 / CLIP: the normalised
CLS token; ConvNeXt / Swin: the normalised spatial mean; ViT: its dense + tanh pooler), ``cls`` --
the first token of the last hidden state, ``mean`` -- the mean over tokens or spatial positions.
``auto`` (default) takes ``pooler`` when the model has one, else ``mean``. Layers: ``embeddings``
and ``layer.<i>`` -- the hidden states the model returns, pooled; LoRA targets (query / value or
q_proj / v_proj) and the block list for ``last-k`` are found from the modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.backbones.base import (
    Backbone,
    Batch,
    Flag,
    OptionalImageSize,
    as_tokens,
    attention_targets,
    generic_lora_targets,
    pool,
)
from safeadapt.backbones.images import images_to_pixels
from safeadapt.config import one_of
from safeadapt.errors import InvalidConfig
from safeadapt.hub import hub_options

POOLINGS = ("auto", "pooler", "cls", "mean", "embeds")
VisionPooling = Annotated[str, one_of(POOLINGS)]
# model types whose AutoModel holds a text tower too: the image side is kept (vision tower and,
# for CLIP, its projection); the text tower is read once, for the zero-shot head
TOWERS = {"clip": "vision_model", "siglip": "vision_model", "clip_vision_model": None}
PROMPTS = ("a photo of a {}.",)


class ImageTower(torch.nn.Module):
    """The image side of a CLIP / SigLIP pair: the vision transformer and (CLIP) its projection;
    its output adds ``image_embeds``, the embedding the text tower is matched against."""

    def __init__(self, vision_model: Any, projection: Any | None) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection if projection is not None else torch.nn.Identity()
        self.config = vision_model.config

    def forward(self, pixel_values: Tensor, output_hidden_states: bool = False, **kw: Any):
        out = self.vision_model(
            pixel_values=pixel_values, output_hidden_states=output_hidden_states, **kw
        )
        out["image_embeds"] = self.projection(out.pooler_output)
        return out


class HFVisionBackbone(Backbone):
    modality = "image"

    def __init__(
        self,
        model: Any,
        name: str,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        pooling: str = "auto",
        processor: str = "preprocessor_config.json",
        source: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise InvalidConfig(f"backbone 'pooling' must be one of {POOLINGS}; got {pooling!r}.")
        if not isinstance(image_size, int) or image_size < 8:
            raise InvalidConfig(
                f"backbone 'image_size' must be an integer >= 8; got {image_size!r}."
            )
        self.model = model
        self.name = name
        self.image_size = image_size
        self.processor = processor
        self.source = source or {}  # where the pair's text tower is read from (zero-shot head)
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        import inspect

        # ViT / DeiT / DINOv2 / CLIP at another size than trained: interpolate the positions
        native = getattr(model.config, "image_size", image_size)
        self._extra = (
            {"interpolate_pos_encoding": True}
            if native != image_size
            and "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
            else {}
        )
        with torch.no_grad():  # one small pass: the hidden states and the pooled output it has
            was = model.training
            model.eval()
            zeros = torch.zeros(1, 3, image_size, image_size)
            out = model(pixel_values=zeros, output_hidden_states=True, **self._extra)
            model.train(was)
        has_pooler = getattr(out, "pooler_output", None) is not None
        has_embeds = "image_embeds" in out
        if pooling == "pooler" and not has_pooler:
            raise InvalidConfig(f"{name!r} has no pooled output; use pooling 'cls' or 'mean'.")
        if pooling == "embeds" and not has_embeds:
            raise InvalidConfig(
                f"{name!r} is not a CLIP / SigLIP pair: pooling 'embeds' needs its image "
                "embedding; use 'pooler', 'cls' or 'mean'."
            )
        auto = "embeds" if has_embeds else "pooler" if has_pooler else "mean"
        self.pooling = auto if pooling == "auto" else pooling
        self._layers = ("embeddings", *(f"layer.{i}" for i in range(len(out.hidden_states) - 1)))
        self._dim = int(self._features(out).shape[-1])

    @property
    def feature_dim(self) -> int:
        return self._dim

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self._layers

    def lora_targets(self) -> list[str]:
        """The attention's query and value projections (by the model's own module names)."""
        return attention_targets(self) or generic_lora_targets(self)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image_size": self.image_size,
            "pooling": self.pooling,
            "normalise": f"mean {self.mean.flatten().tolist()}, std {self.std.flatten().tolist()}",
            "processor": self.processor,
        }

    def preprocess(self, inputs: np.ndarray) -> dict[str, Tensor]:
        return {"pixels": images_to_pixels(np.asarray(inputs), self.image_size)}

    def _features(self, out: Any) -> Tensor:
        if self.pooling == "embeds":  # CLIP's image embedding, unit length
            return torch.nn.functional.normalize(out["image_embeds"], dim=-1)
        if self.pooling == "pooler":
            return out.pooler_output.flatten(1)
        last = out.last_hidden_state
        if self.pooling == "cls":
            if last.ndim != 3:
                raise InvalidConfig(f"{self.name!r} has no tokens; use pooling 'mean'.")
            return last[:, 0]
        return pool(last)

    def forward_layers(
        self, batch: Batch, layers: Sequence[str], pooled: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.check_layers(layers)
        x = (batch["pixels"] - self.mean) / self.std
        out = self.model(pixel_values=x, output_hidden_states=bool(layers), **self._extra)
        taps = {}
        for name in layers:
            idx = 0 if name == "embeddings" else int(name.split(".")[1]) + 1
            hidden = out.hidden_states[idx]
            taps[name] = pool(hidden) if pooled else as_tokens(hidden)
        return self._features(out), taps


def zero_shot_head(
    backbone: HFVisionBackbone, label_names: Sequence[str], prompts: Sequence[str] = PROMPTS
) -> tuple[Tensor, Tensor]:
    """The zero-shot classifier of a CLIP / SigLIP pair as a linear head on ``backbone``'s
    ``embeds`` features: each class's prompt embeddings (``prompts`` filled with its name),
    normalised, averaged over prompts and normalised again (Radford et al. 2021), times the
    pair's logit scale; bias 0 (SigLIP: its logit bias). Returns ``(weight (K, P), bias (K,))``;
    the logits equal the pair's own ``logits_per_image``."""
    from transformers import AutoModel, AutoTokenizer

    if backbone.pooling != "embeds" or not backbone.source:
        raise InvalidConfig(
            f"a zero-shot head needs a CLIP / SigLIP backbone with pooling 'embeds'; "
            f"{backbone.name!r} has pooling {backbone.pooling!r}."
        )
    if any("{}" not in p for p in prompts) or not prompts:
        raise InvalidConfig("zero-shot 'prompts' must each contain '{}' for the class name.")
    src = backbone.source
    kw = {"revision": src.get("revision"), "trust_remote_code": src.get("trust_remote_code", False)}
    kw.update(hub_options(src["model_id"]))
    pair = AutoModel.from_pretrained(src["model_id"], **kw).eval()
    tokenizer = AutoTokenizer.from_pretrained(src["model_id"], **kw)
    padding = "max_length" if src.get("model_type") == "siglip" else True
    rows = []
    with torch.no_grad():
        for label in label_names:
            enc = tokenizer(
                [p.format(label) for p in prompts], padding=padding, return_tensors="pt"
            )
            out = pair.get_text_features(**{k: v for k, v in enc.items() if k != "token_type_ids"})
            emb = getattr(out, "pooler_output", out)
            emb = torch.nn.functional.normalize(emb, dim=-1).mean(0)
            rows.append(torch.nn.functional.normalize(emb, dim=-1))
        scale = pair.logit_scale.exp()
        bias = getattr(pair, "logit_bias", None)
    weight = (torch.stack(rows) * scale).float()
    b = (
        torch.zeros(len(label_names))
        if bias is None
        else bias.detach().float().expand(len(label_names)).clone()
    )
    return weight.detach(), b


def _edge(size: Any) -> int | None:
    """The square side of a processor size: a dict, a ``SizeDict`` or a number."""
    if size is None:
        return None
    if isinstance(size, int | float):
        return int(size)
    get = size.get if hasattr(size, "get") else lambda k: getattr(size, k, None)
    value = get("height") or get("shortest_edge")
    return int(value) if value else None


def _processor_settings(model_id: str, config: Any, revision: str | None):
    """(size, mean, std, source) from the image processor, else the config's size and 0.5."""
    from transformers import AutoImageProcessor

    try:
        proc = AutoImageProcessor.from_pretrained(
            model_id, revision=revision, **hub_options(model_id)
        )
    except (OSError, ValueError):
        proc = None
    size = None
    if proc is not None:
        for s in (getattr(proc, "crop_size", None), getattr(proc, "size", None)):
            size = size or _edge(s)
        mean, std = getattr(proc, "image_mean", None), getattr(proc, "image_std", None)
        if size and mean and std:
            return int(size), list(mean), list(std), "preprocessor_config.json"
    size = size or getattr(config, "image_size", None) or 224
    size = size[0] if isinstance(size, list | tuple) else size
    return int(size), [0.5] * 3, [0.5] * 3, "none: config image_size, mean = std = 0.5"


def load_hf_vision(
    model_id: str,
    image_size: OptionalImageSize = None,
    pooling: VisionPooling = "auto",
    name: str | None = None,
    revision: str | None = None,
    trust_remote_code: Flag = False,
) -> HFVisionBackbone:
    """A Hugging Face vision model (hub id or local folder) as a backbone.

    ``image_size``: the side images are resized to (default: the image processor's);
    ``pooling``: 'auto' (the model's own pooled output where it has one, else 'cls' or 'mean'),
    'pooler', 'cls', 'mean' or 'embeds' (CLIP / SigLIP image embeddings)."""
    from transformers import AutoConfig, AutoModel

    kw = {"revision": revision, "trust_remote_code": trust_remote_code, **hub_options(model_id)}
    config = AutoConfig.from_pretrained(model_id, **kw)
    size, mean, std, source = _processor_settings(model_id, config, revision)
    model = AutoModel.from_pretrained(model_id, **kw)
    tower = TOWERS.get(config.model_type)
    if tower:
        model = ImageTower(getattr(model, tower), getattr(model, "visual_projection", None))
    where = {
        "model_id": model_id,
        "revision": revision,
        "trust_remote_code": trust_remote_code,
        "model_type": config.model_type,
    }
    return HFVisionBackbone(
        model, name or model_id, image_size or size, mean, std, pooling, source, where
    )

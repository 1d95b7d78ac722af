"""Penalties that keep a fine-tuned model near its pretrained self, registered by name.

- ``l2-sp`` (Li, Grandvalet & Davoine, ICML 2018): ``weight * sum_j ||w_j - w0_j||^2`` over the
  backbone's trainable weights ``w`` and their pretrained values ``w0`` (the head is new: it gets
  ordinary weight decay). The paper replaces weight decay on the backbone by this penalty, so the
  ``l2-sp`` protocol sets ``weight_decay: 0`` by default.
- ``ldifs`` (Mukhoti, Gal, Torr & Dokania 2023, "Fine-tuning can cripple your foundation model"):
  ``weight * mean_taps mean_batch mean_dims (f_l(x)/||f_l(x)|| - f0_l(x)/||f0_l(x)||)^2`` over
  feature taps ``l`` (the input of the first block and evenly spaced block outputs; pooled over
  tokens / space here), ``f`` the adapted and ``f0`` the frozen original backbone. No data
  augmentation is used, so ``f0`` comes from the feature cache (computed once per task), not from
  a second forward pass (``reg_cached: false`` runs a frozen copy on every batch instead, as
  needed once inputs are augmented).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from safeadapt._registry import Registry
from safeadapt.model import Classifier
from safeadapt.protocols.train_loop import Regularizer

REGULARIZERS: Registry[Callable[..., Regularizer]] = Registry("regularizer")
DEFAULT_WEIGHT = {"ldifs": 10.0, "l2-sp": 0.5}


class L2SP(Regularizer):
    name = "l2-sp"

    def __init__(self, model: Classifier, weight: float) -> None:
        self.weight = weight
        self.anchor = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}

    def __call__(
        self, model: Classifier, taps: dict[str, Tensor], index: Tensor, batch: dict[str, Tensor]
    ) -> Tensor:
        total = None
        for n, p in model.backbone.named_parameters():
            if p.requires_grad and n in self.anchor:
                d = (p - self.anchor[n].to(p.device)).pow(2).sum()
                total = d if total is None else total + d
        if total is None:
            return torch.zeros((), device=model.head.weight.device)
        return self.weight * total


class LDIFS(Regularizer):
    name = "ldifs"

    def __init__(self, original_taps: dict[str, Tensor], layers: tuple[str, ...], weight: float):
        missing = [layer for layer in layers if layer not in original_taps]
        if missing:
            raise ValueError(f"LDIFS: cached taps lack layers {missing}")
        self.layers = layers
        self.weight = weight
        # (N, D_l) per tap, normalised once
        self.original = {
            layer: F.normalize(original_taps[layer].float(), dim=1) for layer in layers
        }

    def originals(self, index: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {layer: self.original[layer][index.cpu()] for layer in self.layers}

    def __call__(
        self, model: Classifier, taps: dict[str, Tensor], index: Tensor, batch: dict[str, Tensor]
    ) -> Tensor:
        original = self.originals(index, batch)
        per_tap = []
        for layer in self.layers:
            adapted = F.normalize(taps[layer].float(), dim=1)  # (B, D_l)
            orig = original[layer].to(adapted.device)  # (B, D_l), already normalised
            per_tap.append((adapted - orig).pow(2).mean(dim=1))  # (B,)
        return self.weight * torch.stack(per_tap).mean()


class LiveLDIFS(LDIFS):
    """LDIFS with the original features from a frozen copy of the pretrained backbone, computed
    on every batch (use when inputs are augmented, so cached features would not match)."""

    def __init__(self, original_backbone: torch.nn.Module, layers: tuple[str, ...], weight: float):
        self.layers = layers
        self.weight = weight
        self.frozen = original_backbone.eval().requires_grad_(False)

    @torch.no_grad()
    def originals(self, index: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        device = next(self.frozen.parameters()).device
        _, taps = self.frozen.forward_layers(
            {k: v.to(device) for k, v in batch.items()}, self.layers
        )
        return {k: F.normalize(v.float(), dim=1) for k, v in taps.items()}


@REGULARIZERS.register("l2-sp")
def _l2sp(ctx: Any, model: Classifier, weight: float, cfg: Any) -> L2SP:
    return L2SP(model, weight)


@REGULARIZERS.register("ldifs")
def _ldifs(ctx: Any, model: Classifier, weight: float, cfg: Any) -> LDIFS:
    """Original taps of the train split from the cache (the pretrained backbone = ``model``'s
    backbone before any training step), or from a frozen copy with ``reg_cached: false``."""
    import copy

    layers = tuple(cfg.reg_layers or model.backbone.default_layers)
    model.backbone.check_layers(layers)
    if not getattr(cfg, "reg_cached", True):
        return LiveLDIFS(copy.deepcopy(model.backbone), layers, weight)
    original = ctx.cache.get(
        model.backbone, ctx.task.train, layers=layers, show_progress=ctx.show_progress
    )
    return LDIFS(original, layers, weight)


def build_regularizers(ctx: Any, model: Classifier, cfg: Any) -> list[Regularizer]:
    """The regulariser named by ``cfg.regularizer`` (if any), built on the *pretrained* ``model``
    (call before training)."""
    if not cfg.regularizer:
        return []
    weight = cfg.reg_weight if cfg.reg_weight is not None else DEFAULT_WEIGHT[cfg.regularizer]
    return [REGULARIZERS.get(cfg.regularizer)(ctx, model, weight, cfg)]

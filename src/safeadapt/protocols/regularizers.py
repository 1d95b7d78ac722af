"""Penalties that keep a fine-tuned model near its pretrained self, registered by name.

- ``l2-sp`` (Li, Grandvalet & Davoine, ICML 2018): ``weight * sum_j ||w_j - w0_j||^2`` over the
  backbone's trainable weights ``w`` and their pretrained values ``w0`` (the head is new: it gets
  ordinary weight decay). The paper replaces weight decay on the backbone by this penalty, so the
  ``l2-sp`` protocol sets ``weight_decay: 0`` by default.
- ``ldifs`` (Mukhoti, Gal, Torr & Dokania 2023, "Fine-tuning can cripple your foundation model";
  public code ``omegafragger/ldifs_code``, ``loss/ldifs.py``)::

      weight * mean_batch mean_taps mean_positions || f_l(x)_p / ||f_l(x)_p|| - f0_l(x)_p / ||f0_l(x)_p|| ||^2

  over feature taps ``l`` (the input of the first block and evenly spaced block outputs, as the
  paper's ln_pre + blocks 3/6/9/12 of a ViT-B), *unpooled*: per token (padding excluded) or per
  spatial position, each position's feature vector L2-normalised, the squared distance summed
  over features (= 2 - 2 cos, in [0, 4]) as in LPIPS, from which LDIFS takes its distance. The
  public code averages over features instead (and normalises along its dimension 1), which
  divides the value by the feature width: its weights (0.05 in the loss class) are not
  comparable to ours. ``f0`` comes from a frozen copy of the pretrained backbone run on the same
  batch in eval mode; the adapted taps come from the training forward pass, which has dropout
  and stochastic depth switched off by default (``TrainConfig.dropout``), so at the pretrained
  weights the penalty is exactly 0 and any value measures drift, not dropout noise.

  A *pooled* tap (mean over tokens) hides most of the drift: measured here, pooled MiniLM taps
  gave a penalty ~1/500 of the cross-entropy's gradient at lambda = 10 -- a no-op. Every run
  records the penalty, its ratio to the task loss and the gradient-norm ratio (``info["regularizers"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from safeadapt._registry import Registry
from safeadapt.config import check_settings, non_negative_number, setting
from safeadapt.model import Classifier


class Regularizer:
    """A penalty added to the training loss. ``layers``: backbone taps it needs from the forward
    pass; ``__call__(model, taps, index, batch)`` gets the unwrapped model, those taps
    ``{layer: (B, D)}``, the batch's row indices into the train split and the model inputs."""

    name: str = "regularizer"
    layers: tuple[str, ...] = ()
    pooled: bool = True  # taps pooled (B, D_l), or per position (B, P, D_l)
    weight: float = 1.0

    def __call__(
        self, model: Classifier, taps: dict[str, Tensor], index: Tensor, batch: dict[str, Tensor]
    ) -> Tensor:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Figures the run records about the penalty's own cost (e.g. reused computations)."""
        return {}


REGULARIZERS: Registry[Callable[..., Regularizer]] = Registry("regularizer")
# Calibrated on the built-in tasks so that the penalty acts (see the module docstring and
# examples/ldifs_sweep.py); the README states the measurement.
LDIFS_WEIGHT = 10.0
L2SP_WEIGHT = 0.5
DEFAULT_WEIGHT = {"ldifs": LDIFS_WEIGHT, "l2-sp": L2SP_WEIGHT}


@dataclass(frozen=True)
class L2SPSettings:
    """L2-SP's settings (``regularizer: {l2-sp: {weight: 0.5}}``)."""

    name: ClassVar[str] = "l2-sp"
    weight: float | None = setting(
        None, f"the penalty's weight; null: {L2SP_WEIGHT:g}", non_negative_number()
    )

    def __post_init__(self) -> None:
        check_settings(self, "training", "regularizer.l2-sp")


@dataclass(frozen=True)
class LDIFSSettings:
    """LDIFS's settings (``regularizer: {ldifs: {weight: 10, layers: [...]}}``)."""

    name: ClassVar[str] = "ldifs"
    weight: float | None = setting(
        None, f"the penalty's weight; null: {LDIFS_WEIGHT:g}", non_negative_number()
    )
    layers: tuple[str, ...] | None = setting(
        None, "the feature taps; null: the backbone's default layers"
    )

    def __post_init__(self) -> None:
        check_settings(self, "training", "regularizer.ldifs")


REGULARIZER_SETTINGS: dict[str, type] = {c.name: c for c in (L2SPSettings, LDIFSSettings)}


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


# Memory for the pretrained backbone's taps of the train examples, kept across epochs so each
# example goes through the frozen copy once (not once per epoch); beyond it, taps are recomputed.
LDIFS_MEMO_BYTES = 2 * 1024**3


class LDIFS(Regularizer):
    """The penalty; the pretrained taps of each train example are computed once, in the epoch
    that first sees it, and kept (its real positions only, float32, within ``memo_bytes``) for
    the later epochs: the inputs are deterministic (no augmentation), and a token's taps do not
    depend on its batch's padding. Examples beyond the budget are recomputed each time.
    ``stats()`` records how many examples went through the frozen copy and how many reused."""

    name = "ldifs"
    pooled = False

    def __init__(
        self,
        original_backbone: torch.nn.Module,
        layers: tuple[str, ...],
        weight: float,
        memo_bytes: int = LDIFS_MEMO_BYTES,
    ):
        self.layers = layers
        self.weight = weight
        self.frozen = original_backbone.eval().requires_grad_(False)
        self.memo_bytes = memo_bytes
        self._memo: dict[int, dict[str, Tensor]] = {}
        self._held = 0
        self.computed = 0  # example passes through the frozen copy
        self.reused = 0  # example taps taken from memory

    @torch.no_grad()
    def _forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        device = next(self.frozen.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.items()}
        _, taps = self.frozen.forward_layers(inputs, self.layers, pooled=False)
        return taps

    @torch.no_grad()
    def originals(self, batch: dict[str, Tensor], index: Tensor | None = None) -> dict[str, Tensor]:
        """The pretrained backbone's unpooled taps ``{layer: (B, P, D_l)}`` of this batch
        (zeros at padding positions when taken from memory); ``index``: the examples' rows in
        the train split, to remember them by."""
        if index is None:
            self.computed += len(next(iter(batch.values())))
            return self._forward(batch)
        rows = [int(i) for i in index]
        mask = batch.get("attention_mask")
        size = len(next(iter(batch.values())))
        if len(rows) != size:
            raise ValueError(f"LDIFS: {len(rows)} row indices for a batch of {size} examples")
        missing = [j for j, i in enumerate(rows) if i not in self._memo]
        fresh: dict[str, Tensor] = {}
        if missing:
            at = torch.as_tensor(missing)
            fresh = self._forward({k: v[at] for k, v in batch.items()})
            self.computed += len(missing)
        if len(missing) == len(rows):  # nothing to assemble from memory
            self._remember(rows, missing, fresh, mask)
            return fresh
        self.reused += len(rows) - len(missing)
        first = self._memo[rows[next(j for j in range(len(rows)) if j not in missing)]]
        positions = mask.shape[1] if mask is not None else None
        out = {}
        for layer in self.layers:
            width = first[layer].shape[-1]
            p = positions if positions is not None else first[layer].shape[0]
            out[layer] = torch.zeros(len(rows), p, width, dtype=first[layer].dtype)
        slot = {j: r for r, j in enumerate(missing)}
        for j, i in enumerate(rows):
            keep = mask[j].bool().cpu() if mask is not None else slice(None)
            for layer in self.layers:
                if j in slot:
                    out[layer][j] = fresh[layer][slot[j]].cpu()
                else:
                    out[layer][j][keep] = self._memo[i][layer]
        self._remember(rows, missing, fresh, mask)
        return out

    def _remember(
        self, rows: list[int], missing: list[int], fresh: dict[str, Tensor], mask: Tensor | None
    ) -> None:
        for r, j in enumerate(missing):
            keep = mask[j].bool().cpu() if mask is not None else slice(None)
            taps = {layer: fresh[layer][r].cpu()[keep].clone() for layer in self.layers}
            size = sum(t.numel() * t.element_size() for t in taps.values())
            if self._held + size > self.memo_bytes:
                return
            self._memo[rows[j]] = taps
            self._held += size

    def stats(self) -> dict[str, Any]:
        return {
            "frozen_passes": self.computed,
            "reused_from_memory": self.reused,
            "memory_mb": round(self._held / 2**20, 1),
        }

    def distance(
        self, taps: dict[str, Tensor], batch: dict[str, Tensor], index: Tensor | None = None
    ) -> Tensor:
        """Per-example LDIFS distance ``(B,)`` (without the weight)."""
        original = self.originals(batch, index)
        mask = batch.get("attention_mask")  # (B, T) for text; padding is not a position
        per_tap = []
        for layer in self.layers:
            adapted = F.normalize(taps[layer].float(), dim=-1)  # (B, P, D_l)
            orig = F.normalize(original[layer].float(), dim=-1).to(adapted.device)
            d = (adapted - orig).pow(2).sum(-1)  # (B, P): 2 - 2 cos per position
            if mask is not None and d.shape[1] == mask.shape[1]:
                m = mask.to(d.dtype)
                d = (d * m).sum(1) / m.sum(1).clamp_min(1)
            else:
                d = d.mean(1)
            per_tap.append(d)
        return torch.stack(per_tap).mean(0)

    def __call__(
        self, model: Classifier, taps: dict[str, Tensor], index: Tensor, batch: dict[str, Tensor]
    ) -> Tensor:
        return self.weight * self.distance(taps, batch, index).mean()


@REGULARIZERS.register("l2-sp")
def _l2sp(ctx: Any, model: Classifier, weight: float, settings: L2SPSettings) -> L2SP:
    return L2SP(model, weight)


@REGULARIZERS.register("ldifs")
def _ldifs(ctx: Any, model: Classifier, weight: float, settings: LDIFSSettings) -> LDIFS:
    """A frozen copy of ``model``'s backbone (still pretrained: build before training)."""
    import copy

    layers = tuple(settings.layers or model.backbone.default_layers)
    model.backbone.check_layers(layers)
    return LDIFS(copy.deepcopy(model.backbone), layers, weight)


def build_regularizers(ctx: Any, model: Classifier, cfg: Any) -> list[Regularizer]:
    """The regulariser of ``cfg.regularizer`` (its settings; if any), built on the *pretrained*
    ``model`` (call before training)."""
    settings = cfg.regularizer
    if settings is None:
        return []
    weight = settings.weight if settings.weight is not None else DEFAULT_WEIGHT[settings.name]
    return [REGULARIZERS.get(settings.name)(ctx, model, weight, settings)]

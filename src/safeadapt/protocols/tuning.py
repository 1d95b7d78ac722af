"""Which backbone parameters fine-tuning may change (parameter-efficient tuning).

- ``all``: every parameter (plain fine-tuning).
- ``bitfit`` (Ben Zaken, Goldberg & Ravfogel 2022): only bias terms (norm-layer shifts included).
- ``last-k``: the last ``k`` blocks of the backbone's block list (its largest
  ``nn.ModuleList``) and every parameter after it (final norm / head convolution).
- ``lora`` (Hu et al. 2022), through Hugging Face ``peft``: low-rank adapters ``W + (alpha/r) B A``
  on target modules; the base weights stay frozen. Targets are chosen per backbone (attention
  ``query``/``value`` projections of transformers; 1x1 convolutions of CNNs) unless given. After
  training the adapters are merged into the weights (``merge``), so the result is an
  ordinary model that saves, loads and evaluates like any other.

The head is always trainable. Each method is a small config of its own (``TUNING_SETTINGS``),
written in a study as ``tune: lora`` or ``tune: {lora: {r: 8, alpha: 16}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from safeadapt.config import check_settings, count, flag, interval, setting
from safeadapt.errors import InvalidConfig
from safeadapt.model import Classifier


@dataclass(frozen=True)
class TuneAll:
    """Every parameter moves (plain fine-tuning)."""

    name: ClassVar[str] = "all"


@dataclass(frozen=True)
class BitFit:
    """Only bias terms move (Ben Zaken et al. 2022)."""

    name: ClassVar[str] = "bitfit"


@dataclass(frozen=True)
class LastK:
    """The last ``k`` blocks move, and everything after them."""

    name: ClassVar[str] = "last-k"
    k: int = setting(2, "how many final blocks move", count(1, 1_000))

    def __post_init__(self) -> None:
        check_settings(self, "training", "tune.last-k")


@dataclass(frozen=True)
class LoRA:
    """Low-rank adapters on target modules (Hu et al. 2022), through peft."""

    name: ClassVar[str] = "lora"
    r: int = setting(8, "the adapters' rank", count(1, 4_096))
    alpha: int = setting(16, "the adapters' scale (alpha / r)", count(1, 1_000_000))
    dropout: float = setting(0.0, "dropout on the adapters' input", interval(0, 1))
    targets: tuple[str, ...] | None = setting(
        None, "module names that get adapters; null: chosen per backbone"
    )
    merge: bool = setting(True, "merge the adapters into the weights after training", flag())

    def __post_init__(self) -> None:
        check_settings(self, "training", "tune.lora")


TUNING_SETTINGS: dict[str, type] = {c.name: c for c in (TuneAll, BitFit, LastK, LoRA)}
TUNING = tuple(TUNING_SETTINGS)


def _block_list(backbone: nn.Module) -> tuple[str, nn.ModuleList]:
    lists = [(n, m) for n, m in backbone.named_modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise InvalidConfig(
            "tuning 'last-k' needs a backbone with a block list (an nn.ModuleList); this one "
            "has none. Use 'bitfit', 'lora' or 'all'."
        )
    return max(lists, key=lambda item: len(item[1]))


def lora_targets(backbone: nn.Module) -> list[str]:
    """Default LoRA target module names (suffixes): the ones ``backbone`` declares
    (``Backbone.lora_targets``), or the generic rule for a plain module."""
    from safeadapt.backbones.base import Backbone, generic_lora_targets

    return (
        backbone.lora_targets()
        if isinstance(backbone, Backbone)
        else generic_lora_targets(backbone)
    )


def lora_width(backbone: nn.Module, targets: list[str] | None = None) -> int:
    """The largest rank a LoRA adapter of ``backbone``'s targets can have: the smallest side of
    the widest target (a rank beyond a layer's width adds parameters and no expressiveness)."""
    targets = targets or lora_targets(backbone)
    sides = [
        min(m.in_features, m.out_features)
        if isinstance(m, nn.Linear)
        else min(m.in_channels, m.out_channels)
        for n, m in backbone.named_modules()
        if n.split(".")[-1] in targets and isinstance(m, nn.Linear | nn.Conv2d)
    ]
    return max(sides) if sides else 0


def check_lora_rank(backbone: nn.Module, targets: list[str] | None, rank: int) -> None:
    """Refuse a LoRA rank beyond what the backbone's target layers can hold."""
    width = lora_width(backbone, targets)
    if width and rank > width:
        raise InvalidConfig(
            f"training 'tune.lora.r' {rank} exceeds the width of this backbone's LoRA targets "
            f"({width}); set r <= {width} (typically 4-64)."
        )


def _plain_pointwise_convs(backbone: nn.Module, targets: list[str]) -> None:
    """peft builds its adapters with ``type(base_layer)``; a Conv2d *subclass* (e.g.
    EfficientNet's static-same-padding conv) may not construct that way. For 1x1 stride-1 targets,
    whose padding is none, swap in an equivalent plain ``nn.Conv2d`` with the same weights."""
    for name, m in list(backbone.named_modules()):
        if name.split(".")[-1] not in targets or type(m) is nn.Conv2d:
            continue
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and tuple(m.stride) == (1, 1):
            plain = nn.Conv2d(m.in_channels, m.out_channels, 1, bias=m.bias is not None)
            plain.load_state_dict(m.state_dict())
            plain.requires_grad_(False)
            parent_name, _, child = name.rpartition(".")
            setattr(backbone.get_submodule(parent_name) if parent_name else backbone, child, plain)


def apply_tuning(model: Classifier, cfg: Any) -> dict[str, Any]:
    """Set ``requires_grad`` (and inject LoRA adapters) on ``model`` per ``cfg.tune`` (a
    training config, or the tuning settings themselves)."""
    method = getattr(cfg, "tune", cfg)
    tune = method.name
    backbone = model.backbone
    info: dict[str, Any] = {"tune": tune}
    if tune == "all":
        return info
    if tune == "bitfit":
        for n, p in backbone.named_parameters():
            p.requires_grad_(n.endswith("bias"))
    elif tune == "last-k":
        prefix, blocks = _block_list(backbone)
        k = min(method.k, len(blocks))
        first = len(blocks) - k
        seen_blocks = False
        for n, p in backbone.named_parameters():
            in_blocks = n.startswith(prefix + ".")
            if in_blocks:
                seen_blocks = True
                p.requires_grad_(int(n[len(prefix) + 1 :].split(".")[0]) >= first)
            else:
                p.requires_grad_(seen_blocks)  # after the block list: trainable
        info["last_k"] = k
    elif tune == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        targets = list(method.targets) if method.targets else lora_targets(backbone)
        check_lora_rank(backbone, targets, method.r)
        config = LoraConfig(
            r=method.r,
            lora_alpha=method.alpha,
            lora_dropout=method.dropout,
            target_modules=targets,
            bias="none",
        )
        for p in backbone.parameters():
            p.requires_grad_(False)
        _plain_pointwise_convs(backbone, targets)
        inject_adapter_in_model(config, backbone)
        for n, p in backbone.named_parameters():
            p.requires_grad_("lora_" in n)
        info.update({"lora_targets": targets, "lora_r": method.r})
    else:  # validated by TrainConfig; kept for direct callers
        raise InvalidConfig(f"tuning 'tune' must be one of {TUNING}; got {tune!r}.")
    for p in model.head.parameters():
        p.requires_grad_(True)
    return info


def merge_lora(model: Classifier) -> int:
    """Fold every LoRA adapter into its base layer and put the base layer back; returns how many.

    After this the backbone has its original module structure (state-dict keys included)."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(model.backbone.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = model.backbone.get_submodule(parent_name) if parent_name else model.backbone
            setattr(parent, child, module.get_base_layer())
            merged += 1
    for p in model.parameters():
        p.requires_grad_(True)
    return merged

"""The fine-tuning settings shared by every protocol that trains the backbone (FT, LP-FT, L2-SP,
LDIFS, WiSE-FT, soups), nested by concern: the optimiser and its schedule (``optimizer``), early
stopping (``stopping``), which parameters move (``tune``: all, BitFit, the last k blocks, LoRA,
each a small config of its own) and the penalty toward the pretrained model (``regularizer``:
L2-SP or LDIFS, each with its own settings); the size limits are checked before anything is
allocated.

A study may write the nested form or the flat spellings of earlier releases, which
``FLAT_SPELLINGS`` maps to their place (``lora_r: 4`` is ``tune: {lora: {r: 4}}``)::

    ft: {lr: 2e-5, tune: {lora: {r: 8, alpha: 16}}, regularizer: {ldifs: {weight: 10}},
         optimizer: {weight_decay: 0.01}, stopping: {patience: 2}}

Run keys and records keep the flat form (``TrainConfig.flat``), so a study written either way
reuses the runs of the other, and of earlier releases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safeadapt.config import (
    Rule,
    check_settings,
    choice_parts,
    choice_setting,
    count,
    flag,
    interval,
    nested_setting,
    non_negative_number,
    one_of,
    positive_number,
    setting,
)
from safeadapt.errors import InvalidConfig
from safeadapt.protocols.regularizers import REGULARIZER_SETTINGS
from safeadapt.protocols.tuning import TUNING_SETTINGS, TuneAll

# Sizes a study may ask for, bounded before anything is allocated (a LoRA rank beyond the
# backbone's width is also refused when the adapters are made: safeadapt.protocols.tuning).
TRAIN_LIMITS = {
    "epochs": 10_000,
    "batch_size": 65_536,
    "eval_batch_size": 65_536,
    "patience": 10_000,
    "max_steps": 100_000_000,
}


def _size(name: str) -> Rule:
    return count(1, TRAIN_LIMITS[name])


@dataclass(frozen=True)
class Optimizer:
    """AdamW with a linear warm-up, then a cosine decay."""

    head_lr: float | None = setting(
        None, "learning rate of the head; null: lr (larger for a random head)", positive_number()
    )
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and norms)",
                                  non_negative_number())  # fmt: skip
    warmup_ratio: float = setting(0.1, "share of the steps with a linear warm-up, then cosine",
                                  interval(0, 1))  # fmt: skip
    grad_clip: float = setting(1.0, "gradient-norm clipping (0: none)", non_negative_number())

    def __post_init__(self) -> None:
        check_settings(self, "training", "optimizer")


@dataclass(frozen=True)
class Stopping:
    """When fine-tuning ends, and which epoch it keeps."""

    patience: int = setting(2, "epochs without a better validation accuracy before stopping",
                            _size("patience"))  # fmt: skip
    # The starting point (epoch 0) is kept instead of the best fine-tuned epoch when that epoch is
    # significantly worse on validation (keep_start_decision), so fine-tuning never ends clearly
    # below where it began (LP-FT: below its LP head).
    keep_start: bool = setting(
        True, "keep the start when fine-tuning is significantly worse on validation", flag()
    )

    def __post_init__(self) -> None:
        check_settings(self, "training", "stopping")


# Earlier releases' flat spellings: {flat name: (field, choice or None, setting)}. The one
# mapping between the two forms: TrainConfig.nest reads it, TrainConfig.flat writes it, and the
# model card (study/export.py) takes from it which settings acted.
FLAT_SPELLINGS: dict[str, tuple[str, str | None, str]] = {
    "head_lr": ("optimizer", None, "head_lr"),
    "weight_decay": ("optimizer", None, "weight_decay"),
    "warmup_ratio": ("optimizer", None, "warmup_ratio"),
    "grad_clip": ("optimizer", None, "grad_clip"),
    "patience": ("stopping", None, "patience"),
    "keep_start": ("stopping", None, "keep_start"),
    "last_k": ("tune", "last-k", "k"),
    "lora_r": ("tune", "lora", "r"),
    "lora_alpha": ("tune", "lora", "alpha"),
    "lora_dropout": ("tune", "lora", "dropout"),
    "lora_targets": ("tune", "lora", "targets"),
    "merge_lora": ("tune", "lora", "merge"),
    "reg_weight": ("regularizer", "*", "weight"),  # every regulariser has a weight
    "reg_layers": ("regularizer", "ldifs", "layers"),
}
CHOICES = {"tune": TUNING_SETTINGS, "regularizer": REGULARIZER_SETTINGS}


@dataclass(frozen=True)
class TrainConfig:
    """How a protocol fine-tunes: the learning rate and budget, the optimiser, early stopping,
    which parameters move and the penalty toward the pretrained model. Every setting declares its
    meaning and range (``safeadapt list ft`` shows them; ``check_settings`` enforces them)."""

    lr: float = setting(2e-5, "learning rate of the backbone (AdamW)", positive_number())
    epochs: int = setting(3, "passes over the training set (early stopping may end sooner)",
                          _size("epochs"))  # fmt: skip
    batch_size: int = setting(32, "training examples per step", _size("batch_size"))
    max_steps: int | None = setting(None, "cap on optimiser steps (quick runs); null: none",
                                    _size("max_steps"))  # fmt: skip
    eval_batch_size: int = setting(128, "examples per evaluation batch", _size("eval_batch_size"))
    mixed_precision: str = setting("no", "fp16 / bf16 autocast on a GPU that has it",
                                   one_of(("no", "fp16", "bf16")))  # fmt: skip
    # Keep BatchNorm running statistics at their pretrained values: small target batches would
    # otherwise overwrite them and shift every feature (and break an LP head fitted on them).
    freeze_norm_stats: bool = setting(
        True, "keep BatchNorm statistics at their pretrained values", flag()
    )
    # Dropout and stochastic depth during fine-tuning. Off by default: the LP head of LP-FT was
    # fitted on eval-mode features and LDIFS compares with eval-mode originals; with them on,
    # the head starts on different features (EfficientNet: 0.98 -> 0.85 train accuracy) and the
    # penalty measures noise (MiniLM: 1.3e-3 at the pretrained weights instead of 0).
    dropout: bool = setting(False, "dropout and stochastic depth while fine-tuning", flag())
    optimizer: Optimizer = nested_setting(Optimizer, "AdamW and its schedule")
    stopping: Stopping = nested_setting(Stopping, "early stopping and the start's keeping")
    tune: Any = choice_setting(
        TuneAll(), "which parameters move (safeadapt.protocols.tuning)", lambda: TUNING_SETTINGS
    )
    regularizer: Any = choice_setting(
        None, "a penalty toward the pretrained model (safeadapt.protocols.regularizers)",
        lambda: REGULARIZER_SETTINGS,
        optional=True,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self, "training")

    @classmethod
    def nest(cls, values: Mapping[str, Any], where: str, base: Any = None) -> dict[str, Any]:
        """``values`` with the flat spellings moved to their nested place, on top of what
        ``values`` gives there or else ``base``'s value (default: the class's). A setting given
        both ways is an error; so is one for a method not in use, unless it is that method's
        default (it would change nothing)."""
        if not any(k in FLAT_SPELLINGS for k in values):
            return dict(values)
        base = cls() if base is None else base
        out = {k: v for k, v in values.items() if k not in FLAT_SPELLINGS}
        for flat, value in values.items():
            if flat not in FLAT_SPELLINGS:
                continue
            field, choice, name = FLAT_SPELLINGS[flat]
            given = out.get(field, getattr(base, field))
            if field in CHOICES:
                method, settings = (
                    (None, {}) if given is None
                    else choice_parts(given, CHOICES[field], f"training {field!r}")
                )  # fmt: skip
                if method is None or choice not in ("*", method):
                    if value == _flat_default(field, choice, name):
                        continue  # an unused method's default: changes nothing
                    need = f"{field}: {choice}" if choice != "*" else f"a {field}"
                    raise InvalidConfig(
                        f"{where}: {flat!r} applies to {need}, and {field} is "
                        f"{method or 'null'}: it would not act. Remove it, or set {need}."
                    )
                merged, target = {method: settings}, settings
            else:
                merged = dict(given) if isinstance(given, Mapping) else dataclasses.asdict(given)
                target = merged
            written = values.get(field)
            if isinstance(written, Mapping) and _names(written, name):
                raise InvalidConfig(f"{where}: {flat!r} and {field} both give {name!r}; keep one.")
            target[name] = value
            out[field] = merged
        return out

    def flat(self) -> dict[str, Any]:
        """The flat form of earlier releases (run keys, records, trackers and model cards)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("optimizer", "stopping"):
                out.update(dataclasses.asdict(value))
            elif f.name in CHOICES:
                out[f.name] = None if value is None else value.name
            elif dataclasses.is_dataclass(value):
                out[f.name] = dataclasses.asdict(value)
            else:
                out[f.name] = value
        for flat, (field, choice, name) in FLAT_SPELLINGS.items():
            if field not in CHOICES:
                continue
            chosen = getattr(self, field)
            if chosen is not None and choice in ("*", chosen.name) and hasattr(chosen, name):
                out[flat] = getattr(chosen, name)
            else:
                out[flat] = _flat_default(field, choice, name)
        return out


def _flat_default(field: str, choice: str | None, name: str) -> Any:
    """What earlier releases stored for a flat setting whose method is not in use."""
    if field == "regularizer":
        return None  # reg_weight / reg_layers: null unless given
    return getattr(CHOICES[field][choice](), name)


def _names(value: Mapping, name: str) -> bool:
    """Whether the mapping ``value`` (a sub-config, or ``{method: {settings}}``) gives
    ``name``."""
    return name in value or any(isinstance(v, Mapping) and name in v for v in value.values())

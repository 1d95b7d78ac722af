"""The fine-tuning settings shared by every protocol that trains the backbone (FT, LP-FT, L2-SP,
LDIFS, WiSE-FT, soups): optimiser and schedule, early stopping, which parameters move
(``tune``: all, BitFit, the last k blocks, LoRA), the regulariser toward the pretrained model,
and the size limits checked before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.config import (
    Rule,
    check_settings,
    count,
    flag,
    interval,
    non_negative_number,
    one_of,
    positive_number,
    setting,
)
from safeadapt.protocols.regularizers import REGULARIZERS
from safeadapt.protocols.tuning import TUNING

# Sizes a study may ask for, bounded before anything is allocated (a LoRA rank beyond the
# backbone's width is also refused when the adapters are made: safeadapt.protocols.tuning).
TRAIN_LIMITS = {
    "epochs": 10_000,
    "batch_size": 65_536,
    "eval_batch_size": 65_536,
    "patience": 10_000,
    "last_k": 1_000,
    "lora_r": 4_096,
    "lora_alpha": 1_000_000,
    "max_steps": 100_000_000,
}


def _size(name: str) -> Rule:
    return count(1, TRAIN_LIMITS[name])


@dataclass(frozen=True)
class TrainConfig:
    """How a protocol fine-tunes: optimiser and schedule, early stopping, which parameters move
    and the penalty toward the pretrained model. Every setting declares its meaning and range
    (``safeadapt list ft`` shows them; ``check_settings`` enforces them)."""

    lr: float = setting(2e-5, "learning rate of the backbone (AdamW)", positive_number())
    head_lr: float | None = setting(
        None, "learning rate of the head; null: lr (larger for a random head)", positive_number()
    )
    epochs: int = setting(3, "passes over the training set (early stopping may end sooner)",
                          _size("epochs"))  # fmt: skip
    batch_size: int = setting(32, "training examples per step", _size("batch_size"))
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and norms)",
                                  non_negative_number())  # fmt: skip
    warmup_ratio: float = setting(0.1, "share of the steps with a linear warm-up, then cosine",
                                  interval(0, 1))  # fmt: skip
    grad_clip: float = setting(1.0, "gradient-norm clipping (0: none)", non_negative_number())
    patience: int = setting(2, "epochs without a better validation accuracy before stopping",
                            _size("patience"))  # fmt: skip
    eval_batch_size: int = setting(128, "examples per evaluation batch", _size("eval_batch_size"))
    mixed_precision: str = setting("no", "fp16 / bf16 autocast on a GPU that has it",
                                   one_of(("no", "fp16", "bf16")))  # fmt: skip
    max_steps: int | None = setting(None, "cap on optimiser steps (quick runs); null: none",
                                    _size("max_steps"))  # fmt: skip
    # Keep BatchNorm running statistics at their pretrained values: small target batches would
    # otherwise overwrite them and shift every feature (and break an LP head fitted on them).
    freeze_norm_stats: bool = setting(
        True, "keep BatchNorm statistics at their pretrained values", flag()
    )
    tune: str = setting("all", "which parameters move (safeadapt.protocols.tuning)",
                        one_of(TUNING))  # fmt: skip
    last_k: int = setting(2, "tune: last-k -- how many final blocks move", _size("last_k"))
    lora_r: int = setting(8, "tune: lora -- the adapters' rank", _size("lora_r"))
    lora_alpha: int = setting(16, "tune: lora -- the adapters' scale (alpha / r)",
                              _size("lora_alpha"))  # fmt: skip
    lora_dropout: float = setting(0.0, "tune: lora -- dropout on the adapters' input",
                                  interval(0, 1))  # fmt: skip
    lora_targets: tuple[str, ...] | None = setting(
        None, "tune: lora -- module names that get adapters; null: chosen per backbone"
    )
    merge_lora: bool = setting(True, "tune: lora -- merge the adapters into the weights after",
                               flag())  # fmt: skip
    regularizer: str | None = setting(
        None, "a penalty toward the pretrained model (safeadapt.protocols.regularizers)",
        one_of(lambda: REGULARIZERS.names()),
    )  # fmt: skip
    reg_weight: float | None = setting(
        None, "the penalty's weight; null: the regulariser's default", non_negative_number()
    )
    reg_layers: tuple[str, ...] | None = setting(
        None, "LDIFS: the feature taps; null: the backbone's default layers"
    )
    # Dropout and stochastic depth during fine-tuning. Off by default: the LP head of LP-FT was
    # fitted on eval-mode features and LDIFS compares with eval-mode originals; with them on,
    # the head starts on different features (EfficientNet: 0.98 -> 0.85 train accuracy) and the
    # penalty measures noise (MiniLM: 1.3e-3 at the pretrained weights instead of 0).
    dropout: bool = setting(False, "dropout and stochastic depth while fine-tuning", flag())
    # The starting point (epoch 0) is kept instead of the best fine-tuned epoch when that epoch is
    # significantly worse on validation (keep_start_decision), so fine-tuning never ends clearly
    # below where it began (LP-FT: below its LP head).
    keep_start: bool = setting(
        True, "keep the start when fine-tuning is significantly worse on validation", flag()
    )

    def __post_init__(self) -> None:
        check_settings(self, "training")

"""The fine-tuning loop, on Hugging Face Accelerate: the same code runs on this CPU and on several
GPUs under ``accelerate launch`` (mixed precision where the device has it).

AdamW (no decay on biases / norms), linear warmup then cosine decay, gradient clipping, early
stopping on validation accuracy with the best epoch's weights restored. Regularisers (L2-SP,
LDIFS, ...) plug in as callables ``(model, batch, logits) -> scalar loss`` added to the CE.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from safeadapt.config import non_negative, positive, positive_ints, require
from safeadapt.data.task import Split
from safeadapt.model import Classifier
from safeadapt.progress import progress

if TYPE_CHECKING:
    from safeadapt.protocols.base import FitContext


class Regularizer:
    """A penalty added to the training loss. ``layers``: backbone taps it needs from the forward
    pass; ``__call__(model, taps, index, batch)`` gets the unwrapped model, those taps
    ``{layer: (B, D)}``, the batch's row indices into the train split and the model inputs."""

    name: str = "regularizer"
    layers: tuple[str, ...] = ()

    def __call__(
        self, model: Classifier, taps: dict[str, Tensor], index: Tensor, batch: dict[str, Tensor]
    ) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 2e-5
    head_lr: float | None = None  # default: lr (set larger for a randomly initialised head)
    epochs: int = 3
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    patience: int = 2
    eval_batch_size: int = 128
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (GPU)
    max_steps: int | None = None  # cap on optimiser steps (quick runs)
    # Keep BatchNorm running statistics at their pretrained values: small target batches would
    # otherwise overwrite them and shift every feature (and break an LP head fitted on them).
    freeze_norm_stats: bool = True
    # Which parameters move (safeadapt.protocols.tuning): all | bitfit | last-k | lora
    tune: str = "all"
    last_k: int = 2
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None  # default: chosen per backbone
    merge_lora: bool = True
    # A penalty toward the pretrained model (safeadapt.protocols.regularizers): ldifs | l2-sp
    regularizer: str | None = None
    reg_weight: float | None = None  # default per regulariser (LDIFS 10, L2-SP 0.5)
    reg_layers: tuple[str, ...] | None = None  # LDIFS taps; default: backbone.default_layers
    # LDIFS: original features from the cache (right without data augmentation); False runs a
    # frozen copy of the pretrained backbone on every batch instead
    reg_cached: bool = True

    def __post_init__(self) -> None:
        from safeadapt.protocols.regularizers import REGULARIZERS
        from safeadapt.protocols.tuning import TUNING

        owner = "training"
        require(
            self.tune in TUNING,
            f"{owner} 'tune' must be one of {', '.join(TUNING)}; got {self.tune!r}.",
        )
        positive_ints(self, ("last_k", "lora_r", "lora_alpha"), owner)
        require(
            0 <= self.lora_dropout < 1,
            f"{owner} 'lora_dropout' must be in [0, 1); got {self.lora_dropout!r}.",
        )
        if self.regularizer is not None:
            REGULARIZERS.get(self.regularizer)
        if self.reg_weight is not None:
            non_negative("reg_weight", self.reg_weight, owner)
        positive("lr", self.lr, owner)
        if self.head_lr is not None:
            positive("head_lr", self.head_lr, owner)
        positive_ints(self, ("epochs", "batch_size", "eval_batch_size", "patience"), owner)
        non_negative("weight_decay", self.weight_decay, owner)
        non_negative("grad_clip", self.grad_clip, owner)
        require(
            0 <= self.warmup_ratio < 1,
            f"{owner} 'warmup_ratio' must be in [0, 1); got {self.warmup_ratio!r}.",
        )
        require(
            self.mixed_precision in ("no", "fp16", "bf16"),
            f"{owner} 'mixed_precision' must be 'no', 'fp16' or 'bf16'; got {self.mixed_precision!r}.",
        )
        if self.max_steps is not None:
            require(
                isinstance(self.max_steps, int) and self.max_steps >= 1,
                f"{owner} 'max_steps' must be an integer >= 1 or null; got {self.max_steps!r}.",
            )


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def make_loader(
    model: Classifier, split: Split, batch_size: int, shuffle: bool, seed: int
) -> DataLoader:
    """Batches of preprocessed inputs plus ``labels``; tokenisation / resizing happen per batch."""

    def collate(index: list[int]) -> dict[str, Tensor]:
        idx = np.asarray(index)
        raw = (
            split.inputs[idx]
            if isinstance(split.inputs, np.ndarray)
            else [split.inputs[i] for i in idx]
        )
        batch = model.backbone.preprocess(raw)
        batch["labels"] = torch.from_numpy(split.labels[idx])
        batch["index"] = torch.from_numpy(idx)
        return batch

    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        _Indexed(len(split)),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate,
        generator=gen,
    )


def param_groups(model: Classifier, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: head at ``head_lr``; no weight decay on biases and 1-D (norm) weights."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_head = name.startswith("head.")
        decay = p.ndim > 1
        groups.setdefault((is_head, decay), []).append(p)
    out = []
    for (is_head, decay), params in groups.items():
        lr = (cfg.head_lr or cfg.lr) if is_head else cfg.lr
        out.append({"params": params, "lr": lr, "weight_decay": cfg.weight_decay if decay else 0.0})
    return out


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress_ = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def predict_logits(
    model: Classifier, split: Split, batch_size: int = 128, show_progress: bool = False
) -> Tensor:
    """Logits ``(N, K)`` of ``model`` on ``split`` in eval mode, on CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    starts = range(0, len(split), batch_size)
    for start in progress(starts, f"predict {split.name}", show_progress):
        raw = split.inputs[start : start + batch_size]
        batch = {k: v.to(device) for k, v in model.backbone.preprocess(raw).items()}
        out.append(model(batch).float().cpu())
    model.train(was_training)
    return torch.cat(out)


def _accelerator(device: str, mixed_precision: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # Accelerate keeps process-wide state; several runs in one process each get a clean one.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=(device == "cpu"), mixed_precision=mixed_precision)


def finetune(
    model: Classifier,
    train: Split,
    val: Split,
    cfg: TrainConfig,
    seed: int,
    *,
    regularizers: Sequence[Regularizer] = (),
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place; returns the history and what was chosen."""
    torch.manual_seed(seed)
    accelerator = _accelerator(device, cfg.mixed_precision)
    loader = make_loader(model, train, cfg.batch_size, shuffle=True, seed=seed)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    optimizer = torch.optim.AdamW(param_groups(model, cfg))
    scheduler = cosine_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    unwrapped: Classifier = accelerator.unwrap_model(model)

    layers = tuple(dict.fromkeys(layer for r in regularizers for layer in r.layers))
    history: list[dict[str, float]] = []
    best_acc, best_state, best_epoch, bad_epochs, step = -1.0, None, 0, 0, 0
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        if cfg.freeze_norm_stats:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        losses, penalties = [], {r.name: [] for r in regularizers}
        bar = progress(loader, f"train epoch {epoch + 1}/{cfg.epochs}", show_progress)
        for batch in bar:
            labels = batch.pop("labels")
            index = batch.pop("index")
            with accelerator.autocast():
                if layers:
                    logits, taps = model(batch, layers=layers)
                else:
                    logits, taps = model(batch), {}
                loss = F.cross_entropy(logits, labels)
                for reg in regularizers:
                    penalty = reg(unwrapped, taps, index, batch)
                    penalties[reg.name].append(penalty.item())
                    loss = loss + penalty
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at step {step}; lower 'lr' "
                    f"(now {cfg.lr}) or turn off mixed precision."
                )
            accelerator.backward(loss)
            if cfg.grad_clip > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            if step >= total:
                break
        logits = predict_logits(unwrapped, val, cfg.eval_batch_size)
        val_labels = torch.from_numpy(val.labels)
        val_acc = (logits.argmax(1) == val_labels).float().mean().item()
        val_loss = F.cross_entropy(logits, val_labels).item()
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                **{f"penalty_{k}": float(np.mean(v)) for k, v in penalties.items() if v},
                "val_accuracy": val_acc,
                "val_loss": val_loss,
            }
        )
        if val_acc > best_acc:
            best_acc, best_epoch, bad_epochs = val_acc, epoch + 1, 0
            best_state = copy.deepcopy(unwrapped.state_dict())
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                break
        if step >= total:
            break
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    return {
        "history": history,
        "best_epoch": best_epoch,
        "val_accuracy": best_acc,
        "steps": step,
        "train_seconds": time.perf_counter() - start,
        "trainable_parameters": sum(p.numel() for p in unwrapped.parameters() if p.requires_grad),
        "device": str(accelerator.device),
    }


def finetune_in_context(
    model: Classifier,
    ctx: FitContext,
    cfg: TrainConfig,
    regularizers: Sequence[Regularizer] = (),
) -> dict[str, Any]:
    """:func:`finetune` on the context's task, seed, device and progress setting, with the
    config's regulariser (built on the still-pretrained model) and parameter-efficient tuning."""
    from safeadapt.protocols.regularizers import build_regularizers
    from safeadapt.protocols.tuning import apply_tuning, merge_lora

    regs = [*regularizers, *build_regularizers(ctx, model, cfg)]
    tuning = apply_tuning(model, cfg)
    info = finetune(
        model,
        ctx.task.train,
        ctx.task.val,
        cfg,
        ctx.seed,
        regularizers=regs,
        device=ctx.device,
        show_progress=ctx.show_progress,
    )
    if cfg.tune == "lora" and cfg.merge_lora:
        tuning["lora_merged_modules"] = merge_lora(model)
    elif cfg.tune != "all":
        for p in model.parameters():
            p.requires_grad_(True)
    info["tuning"] = tuning
    if regs:
        info["regularizers"] = [r.name for r in regs]
    return info

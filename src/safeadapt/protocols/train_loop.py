"""The fine-tuning loop, on Hugging Face Accelerate: the same code runs on this CPU and on several
GPUs under ``accelerate launch`` (mixed precision where the device has it).

AdamW (no decay on biases / norms), linear warmup then cosine decay, gradient clipping, early
stopping on validation accuracy with the best epoch's weights restored. Regularisers (L2-SP,
LDIFS, ...) plug in as callables ``(model, batch, logits) -> scalar loss`` added to the CE.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from safeadapt.data.task import Split
from safeadapt.errors import InvalidConfig, TrainingDiverged
from safeadapt.model import Classifier
from safeadapt.progress import progress
from safeadapt.protocols.regularizers import Regularizer
from safeadapt.protocols.start import keep_start_decision
from safeadapt.protocols.train_config import TrainConfig

if TYPE_CHECKING:
    from safeadapt.protocols.base import FitContext


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
        lr = (cfg.optimizer.head_lr or cfg.lr) if is_head else cfg.lr
        decay_rate = cfg.optimizer.weight_decay if decay else 0.0
        out.append({"params": params, "lr": lr, "weight_decay": decay_rate})
    return out


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress_ = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def predict_logits(
    model: Classifier, split: Split, batch_size: int = 128, show_progress: bool = False
) -> Tensor:
    """Logits ``(N, K)`` of ``model`` on ``split`` in eval mode, on CPU (float32), texts batched
    by length, in ``torch.inference_mode`` and the backbone's precision."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    from safeadapt import distributed
    from safeadapt.data.features import gather_chunks, in_batches, restore

    out, positions = [], []
    lengths = model.backbone.input_lengths(split.inputs)
    batches = distributed.shard(list(in_batches(split.inputs, batch_size, lengths)))
    for pos, raw in progress(batches, f"predict {split.name}", show_progress):
        batch = {k: v.to(device) for k, v in model.backbone.preprocess(raw).items()}
        with torch.inference_mode(), model.backbone.inference_precision():
            logits = model(batch).float().cpu()
        out.append(logits)
        positions.append(pos)
    model.train(was_training)
    positions, chunks = gather_chunks(positions, {"logits": out})
    return restore(chunks["logits"], positions)


def _accelerator(device: str, mixed_precision: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration

    from safeadapt import distributed

    distributed.world_size()  # under a launcher: the process group first, on the right device

    # Accelerate keeps process-wide state; several runs in one process each get a clean one.
    AcceleratorState._reset_state(reset_partial_state=False)
    # Under a launcher, batch_size is the global batch, split between the processes: the
    # gradient steps are those of one process (safeadapt.distributed).
    return Accelerator(
        cpu=(device == "cpu"),
        mixed_precision=mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )


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
    from safeadapt import distributed

    torch.manual_seed(seed)
    if cfg.batch_size % distributed.world_size():
        raise InvalidConfig(
            f"'batch_size' {cfg.batch_size} is the global batch, split between the "
            f"{distributed.world_size()} processes: make it a multiple of {distributed.world_size()}."
        )
    accelerator = _accelerator(device, cfg.mixed_precision)
    loader = make_loader(model, train, cfg.batch_size, shuffle=True, seed=seed)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    optimizer = torch.optim.AdamW(param_groups(model, cfg))
    scheduler = cosine_with_warmup(optimizer, int(cfg.optimizer.warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    unwrapped: Classifier = accelerator.unwrap_model(model)

    layers = tuple(dict.fromkeys(layer for r in regularizers for layer in r.layers))
    pooled = all(r.pooled for r in regularizers)
    history: list[dict[str, float]] = []
    # Epoch 0 = the starting point (e.g. LP-FT's LP head): kept at the end only when the best
    # fine-tuned epoch is significantly worse on the same validation examples.
    start_acc, start_loss, start_correct = _val_scores(unwrapped, val, cfg.eval_batch_size)
    start_state = copy.deepcopy(unwrapped.state_dict())
    best_acc, best_state, best_epoch, bad_epochs, step = -1.0, None, 0, 0, 0
    best_correct = start_correct
    grad_checks: dict[str, list[float]] = {r.name: [] for r in regularizers}
    check_grads = bool(regularizers) and accelerator.num_processes == 1
    start = time.perf_counter()
    quiet = contextlib.ExitStack()
    if not cfg.dropout:  # dropout / stochastic depth drop nothing while training
        quiet.enter_context(unwrapped.backbone.stochastic_off())
    with quiet:
        for epoch in range(cfg.epochs):
            model.train()
            if cfg.freeze_norm_stats:
                for m in model.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()
            losses, task_losses, penalties = [], [], {r.name: [] for r in regularizers}
            bar = progress(loader, f"train epoch {epoch + 1}/{cfg.epochs}", show_progress)
            probe_at = len(loader) // 2  # one gradient-norm check per epoch, mid-epoch
            for i, batch in enumerate(bar):
                labels = batch.pop("labels")
                index = batch.pop("index")
                with accelerator.autocast():
                    if layers:
                        logits, taps = model(batch, layers=layers, pooled=pooled)
                    else:
                        logits, taps = model(batch), {}
                    task_loss = F.cross_entropy(logits, labels)
                    loss = task_loss
                    terms = {}
                    for reg in regularizers:
                        penalty = reg(unwrapped, taps, index, batch)
                        terms[reg.name] = penalty
                        penalties[reg.name].append(penalty.item())
                        loss = loss + penalty
                task_losses.append(task_loss.item())
                if check_grads and i == probe_at:
                    for name, ratio in _grad_norm_ratios(unwrapped, task_loss, terms).items():
                        grad_checks[name].append(ratio)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"training diverged: the loss became {loss.item()} at step {step}; lower "
                        f"'lr' (now {cfg.lr}) or turn off mixed precision. Nothing of this run "
                        "was stored."
                    )
                accelerator.backward(loss)
                if cfg.optimizer.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.optimizer.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                step += 1
                if step >= total:
                    break
            _check_finite_weights(unwrapped, cfg, step)
            val_acc, val_loss, val_correct = _val_scores(unwrapped, val, cfg.eval_batch_size)
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": _mean_over_processes(losses),
                    "task_loss": _mean_over_processes(task_losses),
                    **{f"penalty_{k}": _mean_over_processes(v) for k, v in penalties.items() if v},
                    "val_accuracy": val_acc,
                    "val_loss": val_loss,
                }
            )
            if val_acc > best_acc:
                best_acc, best_epoch, bad_epochs, best_correct = val_acc, epoch + 1, 0, val_correct
                best_state = copy.deepcopy(unwrapped.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.stopping.patience:
                    break
            if step >= total:
                break
    start_test = (
        keep_start_decision(start_correct, best_correct) if cfg.stopping.keep_start else None
    )
    if start_test is not None and start_test.kept_start:
        best_acc, best_epoch, best_state = start_acc, 0, start_state
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    return {
        "history": [
            {"epoch": 0, "val_accuracy": start_acc, "val_loss": start_loss},
            *history,
        ],
        "best_epoch": best_epoch,
        "val_accuracy": best_acc,
        "start_test": None if start_test is None else start_test.to_json(),
        "regularizers": [_penalty_record(r, history, grad_checks[r.name]) for r in regularizers],
        "dropout": cfg.dropout,
        "steps": step,
        "train_seconds": time.perf_counter() - start,
        "trainable_parameters": sum(p.numel() for p in unwrapped.parameters() if p.requires_grad),
        "device": str(accelerator.device),
    }


def _check_finite_weights(model: nn.Module, cfg: TrainConfig, step: int) -> None:
    """Every trainable weight must be finite after an epoch: a huge ``lr`` can blow the weights
    up to inf / NaN while each step's loss still read finite."""
    for name, p in model.named_parameters():
        if p.requires_grad and not bool(torch.isfinite(p.detach()).all()):
            raise TrainingDiverged(
                f"training diverged: weight {name!r} became non-finite by step {step}; lower "
                f"'lr' (now {cfg.lr}). Nothing of this run was stored."
            )


def _mean_over_processes(values: list[float]) -> float:
    """The epoch's mean loss over the global batches (each process saw an equal share of each
    batch under a launcher; one process: the plain mean)."""
    from safeadapt import distributed

    return float(np.mean(distributed.gather([float(np.mean(values))])))


def _val_scores(model: Classifier, val: Split, batch_size: int) -> tuple[float, float, np.ndarray]:
    """Validation accuracy, cross-entropy and per-example correctness ``(N,)`` of ``model``
    (eval mode)."""
    logits = predict_logits(model, val, batch_size)
    labels = torch.from_numpy(val.labels)
    correct = (logits.argmax(1) == labels).numpy()
    return float(correct.mean()), F.cross_entropy(logits, labels).item(), correct


def _grad_norm_ratios(
    model: Classifier, task_loss: Tensor, terms: dict[str, Tensor]
) -> dict[str, float]:
    """||grad penalty|| / ||grad task loss|| over the trainable parameters, per penalty: how hard
    each regulariser pulls compared with the task (0 = it does not act)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def norm(t: Tensor) -> float:
        if not t.requires_grad:
            return 0.0
        grads = torch.autograd.grad(t, params, retain_graph=True, allow_unused=True)
        return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))

    base = norm(task_loss)
    return {k: (norm(v) / base if base > 0 else float("nan")) for k, v in terms.items()}


def _penalty_record(
    reg: Regularizer, history: list[dict[str, float]], grad_ratios: list[float]
) -> dict[str, Any]:
    """What a regulariser did: its weight, mean penalty, penalty / task loss, gradient-norm
    ratio (mid-epoch checks) -- so a no-op is visible in the report."""
    pen = [h[f"penalty_{reg.name}"] for h in history if f"penalty_{reg.name}" in h]
    task = [h["task_loss"] for h in history]
    mean_pen = float(np.mean(pen)) if pen else 0.0
    mean_task = float(np.mean(task)) if task else float("nan")
    return {
        "name": reg.name,
        "weight": reg.weight,
        "mean_penalty": mean_pen,
        "mean_task_loss": mean_task,
        "penalty_to_loss": mean_pen / mean_task if mean_task else float("nan"),
        "grad_norm_ratio": float(np.mean(grad_ratios)) if grad_ratios else None,
        "grad_norm_ratio_per_epoch": grad_ratios,
        **reg.stats(),
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
    if cfg.tune.name == "lora" and cfg.tune.merge:
        tuning["lora_merged_modules"] = merge_lora(model)
    elif cfg.tune.name != "all":
        for p in model.parameters():
            p.requires_grad_(True)
    info["tuning"] = tuning
    return info

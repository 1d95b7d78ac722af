"""Linear probing (LP): multinomial logistic regression on frozen, cached backbone features.

Objective (scikit-learn's, divided by C·N): ``mean_i CE(W x_i + b, y_i) + ||W||² / (2 C N)``,
minimised full-batch with L-BFGS (strong Wolfe line search) in float64. Features are standardised
with train statistics and the scaling is folded back into the head, so the head applies to raw
backbone features. ``C`` is chosen on the validation split (accuracy, ties broken by NLL),
sweeping from strong to weak regularisation with warm starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from safeadapt.config import positive, positive_ints, require
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol


@dataclass(frozen=True)
class LPConfig:
    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    max_iter: int = 300
    standardize: bool = True

    def __post_init__(self) -> None:
        require(len(self.c_grid) > 0, "protocol 'lp' 'c_grid' must list at least one C value.")
        for c in self.c_grid:
            positive("c_grid entry", c, "protocol 'lp'")
        positive_ints(self, ("max_iter",), "protocol 'lp'")


@dataclass
class LinearHead:
    """A fitted head on raw features: ``logits = features @ weight.T + bias``."""

    weight: Tensor  # (K, D)
    bias: Tensor  # (K,)
    C: float
    val_accuracy: float
    val_nll: float
    sweep: list[dict[str, float]]
    # What a hardening knob did to the head (term / loss, difference from plain LP); None for LP.
    effect: dict[str, Any] | None = None

    def logits(self, features: Tensor) -> Tensor:
        return features.to(self.weight.dtype) @ self.weight.T + self.bias


def _fit_logistic(
    x: Tensor, y: Tensor, num_classes: int, C: float, max_iter: int, init: Tensor | None
) -> Tensor:
    """Minimise the L2-regularised multinomial CE; returns packed params ``(D + 1, K)``."""
    n, d = x.shape
    params = init.clone() if init is not None else torch.zeros(d + 1, num_classes, dtype=x.dtype)
    params.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [params],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    reg = 1.0 / (2.0 * C * n)

    def closure() -> Tensor:
        opt.zero_grad()
        logits = x @ params[:d] + params[d]  # (N, K)
        loss = F.cross_entropy(logits, y) + reg * params[:d].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return params.detach()


def fit_linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    num_classes: int,
    config: LPConfig | None = None,
) -> LinearHead:
    """Fit LP heads over ``config.c_grid`` and keep the best on validation.

    Args: train_x ``(N, D)``, train_y ``(N,)``, val_x ``(M, D)``, val_y ``(M,)``.
    """
    config = config or LPConfig()
    x = train_x.double()
    v = val_x.double()
    mean = x.mean(0) if config.standardize else torch.zeros(x.shape[1], dtype=x.dtype)
    std = x.std(0).clamp_min(1e-6) if config.standardize else torch.ones(x.shape[1], dtype=x.dtype)
    xs, vs = (x - mean) / std, (v - mean) / std
    y, vy = train_y.long(), val_y.long()
    d = x.shape[1]

    best, best_key, sweep, init = None, None, [], None
    for C in sorted(config.c_grid):  # strong -> weak regularisation, warm-started
        params = _fit_logistic(xs, y, num_classes, C, config.max_iter, init)
        init = params
        logits = vs @ params[:d] + params[d]
        acc = (logits.argmax(1) == vy).double().mean().item()
        nll = F.cross_entropy(logits, vy).item()
        sweep.append({"C": C, "val_accuracy": acc, "val_nll": nll})
        key = (acc, -nll)
        if best_key is None or key > best_key:
            best, best_key = (params, C, acc, nll), key
    params, C, acc, nll = best  # type: ignore[misc]
    # Fold the standardisation into the head: W' = W / std, b' = b - (mean / std) @ W.
    w = params[:d] / std.unsqueeze(1)  # (D, K)
    b = params[d] - (mean / std) @ params[:d]
    return LinearHead(w.T.float().contiguous(), b.float(), C, acc, nll, sweep)


def cached_split_features(ctx: FitContext, backbone, names=("train", "val")) -> dict[str, Tensor]:
    splits = ctx.task.splits()
    return {
        n: ctx.cache.get(backbone, splits[n], show_progress=ctx.show_progress)["features"]
        for n in names
    }


def linear_probe_head(ctx: FitContext, backbone, config: LPConfig) -> LinearHead:
    """The LP head of ``backbone`` on ``ctx.task`` from cached features."""
    feats = cached_split_features(ctx, backbone)
    task = ctx.task
    return fit_linear_probe(
        feats["train"],
        torch.from_numpy(task.train.labels),
        feats["val"],
        torch.from_numpy(task.val.labels),
        task.num_classes,
        config,
    )


@register_protocol("lp")
class LinearProbe(Protocol):
    """Linear probing: the backbone stays frozen, only a linear head is fitted (on cached features)."""

    Config = LPConfig

    def fit(self, ctx: FitContext) -> FitResult:
        backbone = ctx.backbone_factory()
        head = linear_probe_head(ctx, backbone, self.config)
        model = Classifier.from_head(backbone, head.weight, head.bias).eval()
        info = {
            "C": head.C,
            "val_accuracy": head.val_accuracy,
            "lp_sweep": head.sweep,
            "trainable_parameters": head.weight.numel() + head.bias.numel(),
        }
        return FitResult(model, frozen_backbone=True, info=info)

"""The linear probe: multinomial logistic regression on frozen backbone features, used by the LP
protocol and its hardened variants, concept forgetting, the effective-robustness trend, the flip
rates' pretrained baseline and the shift report's separability check.

Objective (scikit-learn's, divided by C·N): ``mean_i CE(W x_i + b, y_i) + ||W||² / (2 C N)``,
minimised full-batch with L-BFGS (strong Wolfe line search) in float64. Features are standardised
with train statistics and the scaling is folded back into the head, so the head applies to raw
backbone features. ``C`` is chosen on the validation split (accuracy, ties broken by NLL),
sweeping from strong to weak regularisation with warm starts; :func:`probe_path` keeps every
point of that sweep instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import Tensor

from safeadapt.config import positive, positive_ints, require


@dataclass(frozen=True)
class ProbeConfig:
    """``c_grid``: the inverse regularisation strengths tried (best on validation);
    ``max_iter``: L-BFGS iterations per C; ``standardize``: train-statistics scaling."""

    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    max_iter: int = 300
    standardize: bool = True

    WHERE: ClassVar[str] = "linear probe"

    def __post_init__(self) -> None:
        require(len(self.c_grid) > 0, f"{self.WHERE} 'c_grid' must list at least one C value.")
        for c in self.c_grid:
            positive("c_grid entry", c, self.WHERE)
        positive_ints(self, ("max_iter",), self.WHERE)


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
    config: ProbeConfig | None = None,
) -> LinearHead:
    """Fit LP heads over ``config.c_grid`` and keep the best on validation.

    Args: train_x ``(N, D)``, train_y ``(N,)``, val_x ``(M, D)``, val_y ``(M,)``.
    """
    config = config or ProbeConfig()
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


def probe_path(
    train_x: Tensor,
    train_y: Tensor,
    num_classes: int,
    c_grid: tuple[float, ...],
    max_iter: int = 300,
) -> list[tuple[float, LinearHead]]:
    """One head per C of ``c_grid`` (ascending, warm-started along the path), each on raw
    features; ``val_*`` fields are not set (NaN). The effective-robustness trend uses it."""
    x = train_x.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs, y, d = (x - mean) / std, train_y.long(), x.shape[1]
    out, init = [], None
    for C in sorted(c_grid):
        params = _fit_logistic(xs, y, num_classes, C, max_iter, init)
        init = params
        w = params[:d] / std.unsqueeze(1)
        b = params[d] - (mean / std) @ params[:d]
        out.append(
            (C, LinearHead(w.T.float().contiguous(), b.float(), C, float("nan"), float("nan"), []))
        )
    return out


class LinearProbeClassifier(ClassifierMixin, BaseEstimator):
    """The linear probe at one fixed ``C`` as a scikit-learn estimator (``fit`` / ``predict``,
    usable in ``cross_val_predict``); the shift report's separability and label-agreement checks
    use it. Labels may be any integers; ``classes_`` maps them back."""

    def __init__(self, C: float = 0.1, max_iter: int = 300) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, x, y) -> LinearProbeClassifier:
        import numpy as np

        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        k = max(2, len(self.classes_))
        ((_, self.head_),) = probe_path(
            torch.as_tensor(np.asarray(x, dtype=np.float32)),
            torch.from_numpy(codes),
            k,
            (self.C,),
            self.max_iter,
        )
        return self

    def predict(self, x):
        import numpy as np

        logits = self.head_.logits(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        return self.classes_[logits[:, : len(self.classes_)].argmax(1).numpy()]

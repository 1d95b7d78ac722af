"""Calibration: ECE (equal-width and equal-mass bins), NLL, Brier score, reliability-diagram data,
and post-hoc temperature scaling (Guo et al. 2017) fitted on validation.

All functions take ``logits (N, K)`` and ``labels (N,)``; confidences are max-softmax.
ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|   (Naeini et al. 2015; Guo et al. 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from safeadapt.metrics.classification import check_logits
from safeadapt.metrics.registry import register_metric


def _bins(conf: Tensor, n_bins: int, strategy: str) -> Tensor:
    """Bin index ``(N,)`` of each confidence."""
    if strategy == "uniform":
        # right-closed bins (k/B, (k+1)/B] (Guo et al.); torchmetrics' are left-closed: the
        # two differ only for a confidence exactly on an edge (docs/metrics.md)
        return (torch.ceil(conf * n_bins) - 1).clamp(0, n_bins - 1).long()
    if strategy == "quantile":  # equal-mass ("adaptive") bins: each holds ~N/B examples
        order = conf.argsort(stable=True)
        idx = torch.empty_like(order)
        idx[order] = torch.arange(len(conf)) * n_bins // len(conf)
        return idx
    raise ValueError(f"'strategy' must be 'uniform' or 'quantile'; got {strategy!r}")


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram bins: each bin's mean confidence, accuracy and count (empty bins
    have count 0)."""

    confidence: list[float]
    accuracy: list[float]
    count: list[float]

    def calibration_error(self) -> float:
        """The count-weighted mean gap between accuracy and confidence (ECE on these bins)."""
        n = sum(self.count)
        bins = zip(self.accuracy, self.confidence, self.count, strict=True)
        return sum(c / n * abs(a - f) for a, f, c in bins)


def reliability_data(
    logits: Tensor, labels: Tensor, n_bins: int = 15, strategy: str = "uniform"
) -> Reliability:
    """Per bin: mean confidence, accuracy and count (empty bins have count 0)."""
    check_logits(logits, labels)
    if n_bins < 1:
        raise ValueError(f"'n_bins' must be >= 1; got {n_bins}")
    probs = logits.double().softmax(1)
    conf, pred = probs.max(1)
    correct = (pred == labels).double()
    b = _bins(conf, n_bins, strategy)
    count = torch.bincount(b, minlength=n_bins).double()
    conf_sum = torch.bincount(b, weights=conf, minlength=n_bins)
    acc_sum = torch.bincount(b, weights=correct, minlength=n_bins)
    safe = count.clamp_min(1)
    return Reliability(
        confidence=(conf_sum / safe).tolist(),
        accuracy=(acc_sum / safe).tolist(),
        count=count.tolist(),
    )


def expected_calibration_error(
    logits: Tensor, labels: Tensor, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    """ECE with ``n_bins`` bins; ``strategy`` 'uniform' (equal width) or 'quantile' (equal mass).

    >>> import torch
    >>> expected_calibration_error(torch.tensor([[9.0, 0.0], [9.0, 0.0]]), torch.tensor([0, 1]))  # doctest: +ELLIPSIS
    0.4998...
    """
    return reliability_data(logits, labels, n_bins, strategy).calibration_error()


@register_metric("ece")
def ece(logits: Tensor, labels: Tensor) -> float:
    """Equal-width 15-bin ECE."""
    return expected_calibration_error(logits, labels, 15, "uniform")


@register_metric("ece_adaptive")
def ece_adaptive(logits: Tensor, labels: Tensor) -> float:
    """Equal-mass 15-bin ECE (less sensitive to empty bins)."""
    return expected_calibration_error(logits, labels, 15, "quantile")


@register_metric("nll")
def nll(logits: Tensor, labels: Tensor) -> float:
    """Mean negative log-likelihood of the true class."""
    check_logits(logits, labels)
    return F.cross_entropy(logits.double(), labels).item()


@register_metric("brier")
def brier(logits: Tensor, labels: Tensor) -> float:
    """Multi-class Brier score: mean over examples of ``sum_k (p_k - 1[y = k])^2``."""
    check_logits(logits, labels)
    probs = logits.double().softmax(1)
    onehot = F.one_hot(labels, probs.shape[1]).double()
    return (probs - onehot).pow(2).sum(1).mean().item()


MAX_TEMPERATURE = 100.0  # beyond it every probability is near uniform; unbounded it ran to 1e7


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 200) -> float:
    """The temperature ``T`` in ``(0, MAX_TEMPERATURE]`` minimising validation NLL of
    ``logits / T`` (L-BFGS on log T). On uninformative logits the NLL keeps falling as ``T``
    grows; the bound stops it there (and says the logits carry no calibration signal)."""
    check_logits(logits, labels)
    x = logits.double().detach()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    return t if math.isfinite(t) and t <= MAX_TEMPERATURE else MAX_TEMPERATURE

"""Classification metrics on logits."""

from __future__ import annotations

from torch import Tensor

from safeadapt.metrics.registry import register_metric


def check_logits(logits: Tensor, labels: Tensor) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected logits (N, K) and labels (N,); got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if logits.shape[0] == 0:
        raise ValueError("cannot score an empty split")


@register_metric("accuracy")
def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy: ``mean(argmax_k logits[i, k] == labels[i])``.

    >>> import torch
    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    0.5
    """
    check_logits(logits, labels)
    return (logits.argmax(dim=1) == labels).double().mean().item()


__all__ = ["accuracy"]

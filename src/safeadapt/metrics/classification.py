"""Classification metrics on logits: accuracy, and the ones scikit-learn computes from the
predictions or the probabilities (macro-F1, balanced accuracy, AUROC, per-class recall), called
with every class of the logits so that a class absent from a split still counts."""

from __future__ import annotations

import math

import numpy as np
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


def _predicted(logits: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray, list[int]]:
    check_logits(logits, labels)
    return labels.numpy(), logits.argmax(dim=1).numpy(), list(range(logits.shape[1]))


@register_metric("macro_f1")
def macro_f1(logits: Tensor, labels: Tensor) -> float:
    """F1 per class, averaged over every class of the logits (scikit-learn ``f1_score``, macro;
    a class with neither examples nor predictions scores 0)."""
    from sklearn.metrics import f1_score

    y, pred, classes = _predicted(logits, labels)
    return float(f1_score(y, pred, labels=classes, average="macro", zero_division=0))


@register_metric("balanced_accuracy")
def balanced_accuracy(logits: Tensor, labels: Tensor) -> float:
    """The mean of the recalls of the classes present in the split (scikit-learn
    ``balanced_accuracy_score``): accuracy as if every class had as many examples."""
    from sklearn.metrics import balanced_accuracy_score

    y, pred, _ = _predicted(logits, labels)
    return float(balanced_accuracy_score(y, pred))


@register_metric("auroc")
def auroc(logits: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of the softmax probabilities: of class 1 for two classes,
    one-vs-rest macro-averaged over the classes present otherwise (scikit-learn
    ``roc_auc_score``); NaN when the split holds a single class (undefined)."""
    from sklearn.metrics import roc_auc_score

    y, _, classes = _predicted(logits, labels)
    present = np.unique(y)
    if len(present) < 2:
        return math.nan
    probs = logits.double().softmax(1).numpy()
    if len(classes) == 2:
        return float(roc_auc_score(y, probs[:, 1]))
    # one-vs-rest per present class (scikit-learn's multiclass form needs every class present)
    return float(np.mean([roc_auc_score(y == k, probs[:, k]) for k in present]))


@register_metric("recall")
def recall(logits: Tensor, labels: Tensor) -> dict[str, float]:
    """Recall of each class (scikit-learn ``recall_score``, no averaging), keyed by the class
    index; stored as ``recall:<class name>``. A class without examples in the split is left
    out (its recall is undefined)."""
    from sklearn.metrics import recall_score

    y, pred, classes = _predicted(logits, labels)
    present = [k for k in classes if (y == k).any()]
    values = recall_score(y, pred, labels=present, average=None, zero_division=0)
    return {str(k): float(v) for k, v in zip(present, values, strict=True)}


__all__ = ["accuracy", "auroc", "balanced_accuracy", "macro_f1", "recall"]

"""Anomaly / OOD detection from a classifier's logits.

Scores are "ID-ness" (higher = more in-distribution):
- MSP (Hendrycks & Gimpel 2017): ``max_k softmax(z)_k``;
- energy (Liu et al. 2020): ``logsumexp_k z_k`` (the negative free energy).
ID examples are the positives: AUROC = P(score_ID > score_OOD); FPR@95%TPR = share of OOD examples
scored above the threshold that keeps 95% of ID examples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def msp_score(logits: Tensor) -> Tensor:
    return logits.double().softmax(1).max(1).values


def energy_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    return temperature * torch.logsumexp(logits.double() / temperature, dim=1)


def knn_score(bank: Tensor, x: Tensor, k: int, leave_one_out: bool = False) -> np.ndarray:
    """The kNN score (Sun et al., ICML 2022): minus the distance from each row of ``x`` to its
    ``k``-th nearest row of ``bank``, features L2-normalised; low = unlike ID. With
    ``leave_one_out`` (``x`` is the bank itself) each row's own zero distance is skipped."""
    bank_n = torch.nn.functional.normalize(bank.double(), dim=1)
    z = torch.nn.functional.normalize(x.double(), dim=1)
    dist = torch.cdist(z, bank_n)  # (N, M)
    return (-dist.kthvalue(k + int(leave_one_out), dim=1).values).numpy()


def _check(id_scores: Tensor, ood: Tensor) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(id_scores, dtype=np.float64), np.asarray(ood, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size == 0 or b.size == 0:
        raise ValueError(f"expected two non-empty 1-D score arrays; got {a.shape} and {b.shape}")
    return a, b


def auroc(id_scores: Tensor, ood: Tensor) -> float:
    """Area under the ROC curve with ID as positives (0.5 = chance, 1 = perfect separation)."""
    from sklearn.metrics import roc_auc_score

    a, b = _check(id_scores, ood)
    y = np.r_[np.ones(a.size), np.zeros(b.size)]
    return float(roc_auc_score(y, np.r_[a, b]))


def fpr_at_tpr(id_scores: Tensor, ood: Tensor, tpr: float = 0.95) -> float:
    """False-positive rate (OOD accepted as ID) at the first threshold whose true-positive rate
    reaches ``tpr`` (as on scikit-learn's ROC curve): the ``ceil(tpr * n)``-th largest ID score,
    every score at or above it accepted."""
    a, b = _check(id_scores, ood)
    k = max(1, math.ceil(tpr * len(a) - 1e-9))  # the fewest ID examples that reach ``tpr``
    threshold = np.sort(a)[len(a) - k]
    return float((b >= threshold).mean())


def rank_auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + P(tie) / 2 by ranks (Mann-Whitney), as ``roc_auc_score``; NumPy only, for
    the bootstrap loops."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))

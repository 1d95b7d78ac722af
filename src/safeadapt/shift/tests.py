"""Two-sample tests on embeddings: do two sets come from the same distribution?

- ``mmd_test``: the unbiased MMD^2 (Gretton et al., JMLR 2012) with an RBF kernel whose bandwidth
  is the median pairwise distance of the pooled sample (the median heuristic), and a permutation
  p-value ``(1 + #{MMD^2_perm >= MMD^2}) / (1 + P)``. All permutations are computed at once from
  one kernel matrix: with ``s`` the indicator of the first set, ``sum_{i,j in X} k = s^T K s``.
- ``classifier_test``: a classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): a logistic
  regression tells the sets apart; out-of-fold scores from k-fold cross-validation give an AUROC
  (0.5 = indistinguishable) and a one-sided Mann-Whitney p-value; the highest-scoring examples of
  each side are the ones most typical of it.
- ``ks_test``: per-dimension Kolmogorov-Smirnov tests with Benjamini-Hochberg correction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.errors import DataError

MIN_PER_SET = 10


def _check(x: Tensor, y: Tensor, what: str) -> tuple[Tensor, Tensor]:
    x, y = torch.as_tensor(x).double(), torch.as_tensor(y).double()
    if x.ndim != 2 or y.ndim != 2:
        raise DataError(
            f"{what}: embeddings must be 2-D (N, D); got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if x.shape[1] != y.shape[1]:
        raise DataError(
            f"{what}: the two sets have different feature dimensions ({x.shape[1]} vs "
            f"{y.shape[1]}); embed both with the same backbone."
        )
    if min(len(x), len(y)) < MIN_PER_SET:
        raise DataError(
            f"{what}: each set needs at least {MIN_PER_SET} examples; got {len(x)} and {len(y)}."
        )
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise DataError(f"{what}: embeddings contain NaN or infinite values.")
    return x, y


def mmd_test(x: Tensor, y: Tensor, n_permutations: int = 500, seed: int = 0) -> dict[str, Any]:
    """Unbiased MMD^2 between ``x`` ``(N, D)`` and ``y`` ``(M, D)``, with a permutation p-value."""
    x, y = _check(x, y, "mmd_test")
    n, m = len(x), len(y)
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).pow(2)  # (N+M, N+M)
    off = d2[~torch.eye(len(z), dtype=torch.bool)]
    bandwidth = off.median().sqrt().clamp_min(1e-12)
    k = torch.exp(-d2 / (2 * bandwidth**2))

    def stats(sx: Tensor) -> Tensor:  # sx: (P, N+M) indicator of the first set
        sy = 1 - sx
        ks = sx @ k
        kxx = (ks * sx).sum(1)
        kxy = (ks * sy).sum(1)
        kyy = ((sy @ k) * sy).sum(1)
        return (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m)

    observed = stats(torch.cat([torch.ones(n), torch.zeros(m)]).double().unsqueeze(0))[0]
    gen = torch.Generator().manual_seed(seed)
    perms = torch.stack([torch.randperm(n + m, generator=gen) for _ in range(n_permutations)])
    sx = (perms < n).double()  # a random relabelling with n in the first set
    null = torch.cat([stats(chunk) for chunk in sx.split(100)])
    p = (1 + (null >= observed).sum().item()) / (1 + n_permutations)
    return {
        "mmd2": float(observed),
        "p_value": float(p),
        "bandwidth": float(bandwidth),
        "n_permutations": n_permutations,
        "null_mean": float(null.mean()),
        "null_std": float(null.std()),
    }


def classifier_test(
    x: Tensor, y: Tensor, n_folds: int = 5, seed: int = 0, top_k: int = 5
) -> dict[str, Any]:
    """Cross-validated domain classifier: AUROC of telling ``x`` (0) from ``y`` (1), a one-sided
    Mann-Whitney p-value, and the indices of the examples most typical of each side."""
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _check(x, y, "classifier_test")
    z = torch.cat([x, y]).numpy()
    d = np.r_[np.zeros(len(x)), np.ones(len(y))]
    folds = min(n_folds, len(x), len(y))
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    score = cross_val_predict(clf, z, d, cv=cv, method="decision_function")
    auroc = float(roc_auc_score(d, score))
    p = float(mannwhitneyu(score[d == 1], score[d == 0], alternative="greater").pvalue)
    sx, sy = score[: len(x)], score[len(x) :]
    return {
        "auroc": auroc,
        "p_value": p,
        "folds": folds,
        "accuracy": float(((score > 0) == (d == 1)).mean()),
        "typical_first": np.argsort(sx)[:top_k].tolist(),  # most confidently "first set"
        "typical_second": np.argsort(-sy)[:top_k].tolist(),  # most confidently "second set"
    }


def ks_test(x: Tensor, y: Tensor, level: float = 0.05) -> dict[str, Any]:
    """Per-dimension two-sample KS tests, Benjamini-Hochberg adjusted."""
    from scipy.stats import false_discovery_control, ks_2samp

    x, y = _check(x, y, "ks_test")
    res = ks_2samp(x.numpy(), y.numpy(), axis=0, method="asymp")
    adjusted = false_discovery_control(np.asarray(res.pvalue), method="bh")
    return {
        "dimensions": int(x.shape[1]),
        "significant_dimensions": int((adjusted < level).sum()),
        "min_adjusted_p_value": float(adjusted.min()),
        "max_statistic": float(np.max(res.statistic)),
    }

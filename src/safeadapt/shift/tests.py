"""Two-sample tests on embeddings: do two sets come from the same distribution?

- ``mmd_test``: the unbiased MMD^2 (Gretton et al., JMLR 2012) with an RBF kernel whose bandwidth
  is the median pairwise distance of the pooled sample (the median heuristic; over a subsample of
  2,000 points for larger sets), and a permutation p-value ``(1 + #{MMD^2_perm >= MMD^2}) / (1 + P)``.
  All permutations are computed at once, block of kernel rows by block: with ``s`` the indicator
  of the first set, ``sum_{i,j in X} k = s^T K s``.
- ``classifier_test``: a classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): a logistic
  regression tells the sets apart; out-of-fold scores from k-fold cross-validation give an AUROC
  (0.5 = indistinguishable) and a one-sided Mann-Whitney p-value; the highest-scoring examples of
  each side are the ones most typical of it.
- ``ks_test``: per-dimension Kolmogorov-Smirnov tests with Benjamini-Hochberg correction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from safeadapt.errors import DataError
from safeadapt.results.shift import ClassifierResult, KSResult, MMDResult

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


MMD_MAX_PER_SIDE = 25_000  # above: a seeded subsample of each side (said in the result)
BANDWIDTH_SAMPLE = 2_000  # pooled points whose pairwise distances set the median bandwidth
BLOCK_ROWS = 1_024  # kernel rows computed at a time: memory ~ BLOCK_ROWS x (N + M) floats


def mmd_test(
    x: Tensor,
    y: Tensor,
    n_permutations: int = 500,
    seed: int = 0,
    max_per_side: int = MMD_MAX_PER_SIDE,
    block_rows: int = BLOCK_ROWS,
) -> MMDResult:
    """Unbiased MMD^2 between ``x`` ``(N, D)`` and ``y`` ``(M, D)``, with a permutation p-value.

    The kernel matrix is never held whole: it is computed ``block_rows`` rows at a time and each
    block is multiplied at once by the indicators of the observed split and every permutation
    (``s^T K s``, ``1^T K s`` and ``1^T K 1`` give the three terms of every statistic), so memory
    is ``O(block_rows x (N + M) + P x (N + M))``: 20k per side needs well under 1 GB. The median
    bandwidth is taken over the pairs of at most ``BANDWIDTH_SAMPLE`` pooled points (all of them
    below that, which is the exact median heuristic). Sides larger than ``max_per_side`` are
    subsampled (seeded) to it; the result says so in ``subsampled``."""
    x, y = _check(x, y, "mmd_test")
    gen = torch.Generator().manual_seed(seed)
    subsampled = None
    if max(len(x), len(y)) > max_per_side:
        subsampled = {"x": [min(len(x), max_per_side), len(x)],
                      "y": [min(len(y), max_per_side), len(y)]}  # fmt: skip
        x = x[torch.randperm(len(x), generator=gen)[:max_per_side]] if len(x) > max_per_side else x
        y = y[torch.randperm(len(y), generator=gen)[:max_per_side]] if len(y) > max_per_side else y
    n, m = len(x), len(y)
    z = torch.cat([x, y])
    total = n + m
    pick = (
        torch.randperm(total, generator=gen)[:BANDWIDTH_SAMPLE]
        if total > BANDWIDTH_SAMPLE
        else torch.arange(total)
    )
    d2_sample = torch.cdist(z[pick], z[pick]).pow(2)
    off = d2_sample[~torch.eye(len(pick), dtype=torch.bool)]
    bandwidth = off.median().sqrt().clamp_min(1e-12)
    del d2_sample, off
    # row 0: the observed split; rows 1..P: random relabellings with n in the first set
    s = torch.empty(n_permutations + 1, total, dtype=torch.float64)
    s[0] = torch.cat([torch.ones(n), torch.zeros(m)])
    for p in range(n_permutations):
        s[p + 1] = (torch.randperm(total, generator=gen) < n).double()
    sks = torch.zeros(n_permutations + 1, dtype=torch.float64)  # s^T K s
    ks = torch.zeros(n_permutations + 1, dtype=torch.float64)  # 1^T K s
    kk = torch.zeros((), dtype=torch.float64)  # 1^T K 1
    scale = 2 * bandwidth**2
    for start in range(0, total, block_rows):
        rows = slice(start, min(start + block_rows, total))
        block = torch.cdist(z[rows], z).pow_(2)
        block[:, rows].fill_diagonal_(0.0)  # exactly 1 on the kernel's diagonal
        block.div_(-scale).exp_()  # the kernel rows, in place
        t = block @ s.T  # (rows, P + 1): K[rows] s_p
        sks += (s[:, rows].T * t).sum(0)
        ks += t.sum(0)
        kk += block.sum()
        del block, t
    kxx, kxy, kyy = sks, ks - sks, kk - 2 * ks + sks
    stats = (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m)
    observed, null = stats[0], stats[1:]
    p = (1 + (null >= observed).sum().item()) / (1 + n_permutations)
    return MMDResult(
        mmd2=float(observed),
        p_value=float(p),
        bandwidth=float(bandwidth),
        n_permutations=n_permutations,
        null_mean=float(null.mean()),
        null_std=float(null.std()),
        subsampled=subsampled,
    )


class DomainClassifier(NamedTuple):
    """``classifier_test``'s outcome: the test, and the indices of the examples most typical of
    each side (most confidently the first set; most confidently the second)."""

    result: ClassifierResult
    typical_first: list[int]
    typical_second: list[int]


def classifier_test(
    x: Tensor, y: Tensor, n_folds: int = 5, seed: int = 0, top_k: int = 5
) -> DomainClassifier:
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
    accuracy = float(((score > 0) == (d == 1)).mean())
    return DomainClassifier(
        ClassifierResult(auroc=auroc, p_value=p, folds=folds, accuracy=accuracy),
        np.argsort(sx)[:top_k].tolist(),
        np.argsort(-sy)[:top_k].tolist(),
    )


def ks_test(x: Tensor, y: Tensor, level: float = 0.05) -> KSResult:
    """Per-dimension two-sample KS tests, Benjamini-Hochberg adjusted."""
    from scipy.stats import false_discovery_control, ks_2samp

    x, y = _check(x, y, "ks_test")
    res = ks_2samp(x.numpy(), y.numpy(), axis=0, method="asymp")
    adjusted = false_discovery_control(np.asarray(res.pvalue), method="bh")
    return KSResult(
        dimensions=int(x.shape[1]),
        significant_dimensions=int((adjusted < level).sum()),
        min_adjusted_p_value=float(adjusted.min()),
        max_statistic=float(np.max(res.statistic)),
    )

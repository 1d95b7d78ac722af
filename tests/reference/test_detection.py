"""OOD-detection numbers against scikit-learn / SciPy and the papers' definitions (issue 38)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from safeadapt.metrics.detection import auroc, energy_score, fpr_at_tpr, msp_score


def _reference_fpr(a: np.ndarray, b: np.ndarray, tpr: float = 0.95) -> float:
    """scikit-learn's ROC curve: the FPR at the first threshold whose TPR reaches ``tpr``."""
    fpr, tprs, _ = roc_curve(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b],
                             drop_intermediate=False)  # fmt: skip
    return float(fpr[np.searchsorted(tprs, tpr - 1e-12, side="left")])


@pytest.mark.parametrize("n_id", [20, 40, 800, 1000, 19, 37, 1])
@pytest.mark.parametrize("ties", [False, True])
def test_fpr_at_95_tpr_is_scikit_learns(n_id, ties):
    """Regression of issue 38 item 1: at 20 ID examples the old order statistic took the
    minimum (TPR 1.0) and reported +0.32 too much."""
    rng = np.random.default_rng(n_id)
    a, b = rng.normal(1, 1, n_id), rng.normal(0, 1, 300)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    assert fpr_at_tpr(torch.as_tensor(a), torch.as_tensor(b)) == pytest.approx(
        _reference_fpr(a, b), abs=1e-12
    )


def test_auroc_msp_and_energy_are_the_references():
    from scipy.special import logsumexp, softmax

    rng = np.random.default_rng(0)
    a, b = np.round(rng.normal(1, 1, 200), 1), np.round(rng.normal(0, 1, 150), 1)
    y = np.r_[np.ones(200), np.zeros(150)]
    assert auroc(torch.as_tensor(a), torch.as_tensor(b)) == pytest.approx(
        roc_auc_score(y, np.r_[a, b]), abs=1e-12
    )
    logits = rng.normal(0, 3, (50, 7))
    assert np.allclose(msp_score(torch.as_tensor(logits)).numpy(), softmax(logits, 1).max(1))
    assert np.allclose(energy_score(torch.as_tensor(logits)).numpy(), logsumexp(logits, 1))


def _ren_rmd(fit_x, fit_y, x):
    """Relative Mahalanobis distance as Ren et al. (2021) define it: class means with one shared
    maximum-likelihood covariance, minus the distance under one Gaussian of all fit features
    (its maximum-likelihood covariance); score = -min_k RMD_k (what pytorch-ood computes)."""
    classes = np.unique(fit_y)
    means = np.stack([fit_x[fit_y == c].mean(0) for c in classes])
    centred = fit_x - means[np.searchsorted(classes, fit_y)]
    prec = np.linalg.pinv(centred.T @ centred / len(fit_x), hermitian=True)
    mu0 = fit_x.mean(0)
    prec0 = np.linalg.pinv((fit_x - mu0).T @ (fit_x - mu0) / len(fit_x), hermitian=True)
    md = np.stack([np.einsum("nd,de,ne->n", x - m, prec, x - m) for m in means], 1)
    md0 = np.einsum("nd,de,ne->n", x - mu0, prec0, x - mu0)
    return -(md - md0[:, None]).min(1)


def test_relative_mahalanobis_is_ren_et_als():
    """Regression of issue 38 item 3: both covariances were Ledoit-Wolf shrunk, which does not
    cancel in the difference (AUROC below chance on MiniLM features)."""
    from safeadapt.safety.detection import mahalanobis_scorer

    rng = np.random.default_rng(1)
    fit_y = rng.integers(0, 3, 300)
    fit_x = rng.normal(0, 1, (300, 12)) + np.eye(3, 12)[fit_y] * 3
    x = rng.normal(0, 1.5, (80, 12))
    score = mahalanobis_scorer(torch.as_tensor(fit_x), fit_y, relative=True)
    got = score(torch.as_tensor(x), torch.zeros(80, 3))
    assert np.allclose(got, _ren_rmd(fit_x, fit_y, x), rtol=1e-8, atol=1e-8)


def test_mahalanobis_uses_ledoit_wolf_as_documented():
    from sklearn.covariance import LedoitWolf

    from safeadapt.safety.detection import mahalanobis_scorer

    rng = np.random.default_rng(2)
    fit_y = rng.integers(0, 2, 100)
    fit_x = rng.normal(0, 1, (100, 6)) + np.eye(2, 6)[fit_y] * 2
    x = rng.normal(0, 1, (30, 6))
    means = np.stack([fit_x[fit_y == c].mean(0) for c in (0, 1)])
    lw = LedoitWolf(assume_centered=True).fit(fit_x - means[fit_y])
    want = -np.stack([lw.mahalanobis(x - m) for m in means], 1).min(1)
    got = mahalanobis_scorer(torch.as_tensor(fit_x), fit_y)(torch.as_tensor(x), None)
    assert np.allclose(got, want, rtol=1e-8)

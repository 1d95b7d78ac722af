"""The new safety families' functional cores against hand-computed cases and known answers."""

import math

import numpy as np
import pytest
import torch

from safeadapt.safety.conformal import calibrate, prediction_sets
from safeadapt.safety.detection import knn_scorer, mahalanobis_scorer, vim_scorer
from safeadapt.safety.flips import flip_rates
from safeadapt.safety.selective import aurc, optimal_aurc, risk_at, risk_coverage


def test_risk_coverage_by_hand_and_aurc_of_a_perfect_ranker():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, False, True, False])
    cov, risk = risk_coverage(conf, correct)
    np.testing.assert_allclose(cov, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0, 1 / 2, 1 / 3, 2 / 4])
    assert aurc(conf, correct) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    # a perfect ranker puts both errors last: risks 0, 0, 1/3, 1/2
    assert optimal_aurc(correct) == pytest.approx((0 + 0 + 1 / 3 + 1 / 2) / 4)
    assert aurc(correct.astype(float), correct) == optimal_aurc(correct)
    assert risk_at(conf, correct, 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="1-D"):
        risk_coverage(conf, correct[:2])


def test_conformal_coverage_holds_on_exchangeable_data():
    """Calibrated on one half of exchangeable data, the sets cover >= 1 - alpha - tolerance on
    the other half, for both scores; a shifted half is covered less."""
    rng = np.random.default_rng(0)
    n, k = 4000, 5
    logits = rng.normal(size=(n, k)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in probs])  # labels drawn from the model
    for method in ("lac", "aps"):
        q = calibrate(probs[:2000], labels[:2000], 0.1, method)
        sets = prediction_sets(probs[2000:], q, method)
        coverage = sets[np.arange(2000), labels[2000:]].mean()
        assert coverage >= 0.9 - 0.02, method
        assert sets.sum(1).mean() < k  # informative sets, not everything
        shifted = rng.integers(0, k, 2000)  # labels unrelated to the model: a label shift
        assert sets[np.arange(2000), shifted].mean() < coverage - 0.1
    assert calibrate(probs[:5], labels[:5], 0.1, "lac") == math.inf  # too few to calibrate


def test_flip_rates_by_hand():
    y = np.array([0, 1, 1, 0, 1])
    ref = np.array([0, 1, 0, 1, 1])  # right, right, wrong, wrong, right
    new = np.array([0, 0, 1, 1, 1])  # right, wrong, right, wrong, right
    assert flip_rates(ref, new, y) == {"nfr": 0.2, "pfr": 0.2, "changed": 0.4}
    assert flip_rates(ref, ref, y) == {"nfr": 0.0, "pfr": 0.0, "changed": 0.0}


def _gaussians(rng, n, shift=0.0, d=8):
    """Two unit-covariance classes at -1 and +1 in every dimension; ``shift`` moves the data
    along an alternating (+, -, +, ...) direction, away from both means and their directions."""
    y = rng.integers(0, 2, n)
    means = np.stack([np.full(d, -1.0), np.full(d, 1.0)])
    away = np.where(np.arange(d) % 2 == 0, 1.0, -1.0) * shift
    x = means[y] + rng.normal(size=(n, d)) + away
    return torch.from_numpy(x), y


def test_feature_detectors_separate_a_shifted_gaussian_and_agree_with_scikit_learn():
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    fit_x, fit_y = _gaussians(rng, 600)
    id_x, _ = _gaussians(rng, 300)
    far_x, _ = _gaussians(rng, 300, shift=4.0)
    zero = torch.zeros(300, 2)

    def auc(scorer):
        s_id, s_ood = scorer(id_x, zero), scorer(far_x, zero)
        return roc_auc_score(np.r_[np.ones(300), np.zeros(300)], np.r_[s_id, s_ood])

    assert auc(knn_scorer(fit_x, 5)) > 0.95
    assert auc(mahalanobis_scorer(fit_x, fit_y)) > 0.95
    # the relative score (Ren et al.: maximum-likelihood covariances) removes the background
    # distance, which grows here as much as the class distance: much weaker, above chance (with
    # Ledoit-Wolf on both terms it scored 0.75+ here only because the shrinkage did not cancel)
    assert auc(mahalanobis_scorer(fit_x, fit_y, relative=True)) > 0.52
    # kNN: the k-th neighbour distance of normalised features, as scikit-learn computes it
    z = torch.nn.functional.normalize(fit_x, dim=1).numpy()
    nn = NearestNeighbors(n_neighbors=5).fit(z)
    dist, _ = nn.kneighbors(torch.nn.functional.normalize(id_x, dim=1).numpy())
    np.testing.assert_allclose(knn_scorer(fit_x, 5)(id_x, zero), -dist[:, -1], atol=1e-9)


def test_mahalanobis_is_the_squared_distance_to_the_nearest_class_mean():
    """The score is the class-conditional squared distance under the tied covariance (Ledoit-
    Wolf, as scikit-learn estimates it) written out by hand; the relative version subtracts the
    distance under one Gaussian of all the data, both by maximum likelihood (Ren et al.); with
    many examples the shrinkage barely moves the plain distance from the empirical one."""
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(1)
    fit_x, fit_y = _gaussians(rng, 20000, d=3)
    x = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [3.0, -3.0, 3.0]], dtype=torch.float64)
    f = fit_x.numpy()
    means = np.stack([f[fit_y == c].mean(0) for c in (0, 1)])
    centred = f - means[fit_y]
    d = x.numpy()[:, None, :] - means[None]

    def dist(diff, prec):
        return np.einsum("...d,de,...e->...", diff, prec, diff)

    prec = LedoitWolf(assume_centered=True).fit(centred).precision_
    got = mahalanobis_scorer(fit_x, fit_y)(x, torch.zeros(3, 2))
    np.testing.assert_allclose(got, -dist(d, prec).min(1), rtol=1e-9)
    empirical = np.linalg.inv(centred.T @ centred / len(f))
    np.testing.assert_allclose(got, -dist(d, empirical).min(1), rtol=1e-2, atol=2e-3)
    # relative (Ren et al. 2021): both covariances by maximum likelihood
    g = x.numpy() - f.mean(0)
    prec0 = np.linalg.inv((f - f.mean(0)).T @ (f - f.mean(0)) / len(f))
    rel = mahalanobis_scorer(fit_x, fit_y, relative=True)(x, torch.zeros(3, 2))
    expected = -(dist(d, empirical) - dist(g, prec0)[:, None]).min(1)
    np.testing.assert_allclose(rel, expected, rtol=1e-9)


def test_vim_scores_residual_off_the_principal_subspace():
    """ID features live in a 4-d subspace; OOD ones add energy outside it: ViM ranks them
    lower even when the logits are the same."""
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(16, 4)))[0]  # (16, 4)
    fit = torch.from_numpy(rng.normal(size=(500, 4)) @ basis.T)
    w, b = torch.from_numpy(rng.normal(size=(3, 16))), torch.zeros(3, dtype=torch.float64)
    id_x = torch.from_numpy(rng.normal(size=(200, 4)) @ basis.T)
    ood_x = id_x + torch.from_numpy(rng.normal(size=(200, 16))) * 0.5
    same = id_x @ w.T  # the logits held equal
    scorer = vim_scorer(fit, fit @ w.T, w, b, dim=4)
    assert (scorer(id_x, same) > scorer(ood_x, same)).mean() > 0.95

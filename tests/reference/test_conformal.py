"""Split-conformal prediction sets against MAPIE and the definition (issue 38 item 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest


@pytest.mark.parametrize("n, k, alpha", [(19, 3, 0.1), (100, 2, 0.1), (500, 10, 0.05),
                                         (57, 4, 0.2)])  # fmt: skip
def test_the_threshold_is_the_kth_smallest_score(n, k, alpha):
    """Regression: the (k+1)-th smallest was taken; at n = 19, alpha = 0.1 the maximum."""
    from safeadapt.safety.conformal import calibrate, nonconformity

    rng = np.random.default_rng(n)
    probs, labels = rng.dirichlet(np.ones(k), n), rng.integers(0, k, n)
    for method in ("lac", "aps"):
        scores = np.sort(nonconformity(probs, method)[np.arange(n), labels])
        rank = math.ceil((n + 1) * (1 - alpha))
        want = math.inf if rank > n else scores[rank - 1]
        assert calibrate(probs, labels, alpha, method) == want


@pytest.mark.parametrize("n, k", [(19, 3), (200, 2), (500, 10)])
def test_lac_sets_are_mapies(n, k):
    from mapie.classification import SplitConformalClassifier
    from sklearn.base import BaseEstimator, ClassifierMixin

    from safeadapt.safety.conformal import calibrate, prediction_sets

    class Fixed(ClassifierMixin, BaseEstimator):
        def __init__(self, probs=None):
            self.probs = probs

        def fit(self, X, y):  # noqa: N803
            self.classes_ = np.arange(self.probs.shape[1])
            return self

        def predict_proba(self, X):  # noqa: N803
            return self.probs[np.asarray(X).ravel().astype(int)]

        def predict(self, X):  # noqa: N803
            return self.predict_proba(X).argmax(1)

    rng = np.random.default_rng(k)
    probs, labels = rng.dirichlet(np.ones(k) * 0.7, n + 300), rng.integers(0, k, n + 300)
    x = np.arange(n + 300)[:, None]
    mapie = SplitConformalClassifier(Fixed(probs).fit(None, None), confidence_level=0.9,
                                     conformity_score="lac", prefit=True)  # fmt: skip
    mapie.conformalize(x[:n], labels[:n])
    _, sets = mapie.predict_set(x[n:])
    ours = prediction_sets(probs[n:], calibrate(probs[:n], labels[:n], 0.1, "lac"), "lac")
    assert np.array_equal(ours, sets[:, :, 0])

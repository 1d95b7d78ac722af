"""The statistics of the monitor's signals, as pure functions of arrays (no model, no files).

Each test returns a p-value of "this window comes from the reference distribution"; the alert
policy (``monitor.window.AlertPolicy``) decides at what level a p-value raises an alert.

- :func:`embedding_drift` -- MMD^2 between the reference's and the window's features with a
  permutation p-value (``safeadapt.shift.tests.mmd_test``), in two stages: a cheap first pass
  (``FIRST_PERMUTATIONS``) ends the test when the window is clearly like the reference; only the
  others get the permutations the alert level needs. The decision is valid: an alert needs the
  second, independent pass to reach the level.
- :func:`prediction_drift` -- black-box shift detection (Lipton et al., ICML 2018): the
  predicted-class counts of the window against the reference's, a chi-square test of
  homogeneity on the 2 x K table (classes whose expected count is below 5 pooled).
- :func:`ood_rate` -- the share of the window an ID-validation threshold flags, against the
  share it flags on reference examples the threshold was *not* fitted on (one-sided Fisher
  exact test), with a Wilson interval; for two detectors: the energy of the logits
  (:func:`energy`) and the kNN distance in the adapted feature space (``metrics.detection.knn_score``), which
  sees inputs the head is confidently wrong about.
- :func:`atc_threshold` / :func:`atc_estimate` -- Average Thresholded Confidence (Garg et al.,
  ICLR 2022): the negative entropy above which the share of ID-validation examples equals their
  accuracy; the window's estimated accuracy is the share of its examples above it.
- :func:`doc_estimate` -- difference of confidences (Guillory et al., ICCV 2021): validation
  accuracy moved by the change of the temperature-scaled mean confidence.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from torch import Tensor

from safeadapt.metrics.detection import energy_score
from safeadapt.metrics.intervals import wilson_interval
from safeadapt.monitor.signals.base import Proportion, Rate
from safeadapt.shift.tests import mmd_test

FIRST_PERMUTATIONS = 200
# A window whose first-pass p-value is at least this is not tested further (no alert level a
# horizon of windows needs is this lax).
CLEARLY_ALIKE = 0.05
MMD_PER_SIDE = 500  # reference and window subsampled (seeded) to this for the kernel test


class TestResult(NamedTuple):
    """A two-sample test of one window: its statistic and p-value."""

    statistic: float
    p_value: float


def permutations_for(level: float) -> int:
    """Permutations that resolve p-values well below ``level`` (the smallest is 1 / (P + 1))."""
    return int(min(200_000, max(FIRST_PERMUTATIONS, math.ceil(2 / level))))


def embedding_drift(reference: Tensor, window: Tensor, level: float, seed: int) -> TestResult:
    """MMD^2 of ``window`` against ``reference`` features and its p-value (see the module
    docstring: a second pass only where the first is not clearly alike)."""
    first = mmd_test(reference, window, FIRST_PERMUTATIONS, seed=seed, max_per_side=MMD_PER_SIDE)
    if first.p_value >= CLEARLY_ALIKE or permutations_for(level) <= FIRST_PERMUTATIONS:
        return TestResult(first.mmd2, first.p_value)
    second = mmd_test(reference, window, permutations_for(level), seed=seed + 1,
                      max_per_side=MMD_PER_SIDE)  # fmt: skip
    return TestResult(second.mmd2, second.p_value)


def prediction_drift(
    reference_pred: np.ndarray, window_pred: np.ndarray, classes: int
) -> tuple[TestResult, tuple[float, ...]]:
    """Chi-square test that the window's predicted classes follow the reference's distribution
    (both are samples: a test of homogeneity). Classes with an expected count below 5 in either
    row are pooled into one column, so the chi-square approximation holds; with one column left
    there is nothing to test (p = 1). Also the window's predicted-class shares."""
    from scipy.stats import chi2_contingency

    ref = np.bincount(np.asarray(reference_pred, dtype=np.int64), minlength=classes)
    win = np.bincount(np.asarray(window_pred, dtype=np.int64), minlength=classes)
    table = np.stack([ref, win]).astype(float)
    total = table.sum()
    expected = np.outer(table.sum(1), table.sum(0)) / total
    small = (expected < 5).any(0)
    columns = [table[:, ~small]]
    if small.any():
        columns.append(table[:, small].sum(1, keepdims=True))
    table = np.concatenate(columns, axis=1)
    table = table[:, table.sum(0) > 0]
    share = tuple(float(x) for x in win / max(win.sum(), 1))
    if table.shape[1] < 2:
        return TestResult(0.0, 1.0), share
    chi2, p, _, _ = chi2_contingency(table, correction=False)
    return TestResult(float(chi2), float(p)), share


def ood_rate(
    window_scores: np.ndarray, threshold: float, reference_flagged: int, reference_n: int
) -> tuple[Rate, float]:
    """The share of the window scored below ``threshold`` (flagged as out of distribution), its
    Wilson interval, the reference rate, and a one-sided Fisher exact p-value against the reference rate
    ``reference_flagged / reference_n`` (counted on examples the threshold was not fitted on)."""
    from scipy.stats import fisher_exact

    flagged = int((np.asarray(window_scores) < threshold).sum())
    n = len(window_scores)
    table = [[flagged, n - flagged], [reference_flagged, reference_n - reference_flagged]]
    _, p = fisher_exact(table, alternative="greater")
    low, high = wilson_interval(flagged, n)
    return Rate(flagged / n, low, high, reference_flagged / reference_n), float(p)


def knn_k(bank_size: int, k: int = 50) -> int:
    """The neighbour whose distance is the score: ``k`` (the study's detector default), at most
    a tenth of the bank."""
    return max(1, min(k, bank_size // 10))


def energy(logits: Tensor) -> np.ndarray:
    """The energy score ``logsumexp(logits)`` (Liu et al., NeurIPS 2020): low = unlike ID; the
    study's own definition (``metrics.detection.energy_score``)."""
    return energy_score(logits).numpy()


def negative_entropy(logits: Tensor, temperature: float) -> np.ndarray:
    probs = (logits.double() / temperature).softmax(1)
    return (probs * probs.clamp_min(1e-300).log()).sum(1).numpy()


def confidence(logits: Tensor, temperature: float) -> np.ndarray:
    return (logits.double() / temperature).softmax(1).max(1).values.numpy()


def atc_threshold(scores: np.ndarray, accuracy: float) -> float:
    """The threshold ``t`` with ``mean(scores > t) == accuracy`` (to one example): the
    ``(1 - accuracy)`` quantile of the validation scores."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    below = int(round((1 - accuracy) * len(ordered)))
    if below <= 0:
        return float(ordered[0] - 1.0)  # every example above: a perfect validation accuracy
    return float(ordered[min(below, len(ordered)) - 1])


def atc_estimate(scores: np.ndarray, threshold: float) -> float:
    return float((np.asarray(scores) > threshold).mean())


def doc_estimate(conf: np.ndarray, reference_conf_mean: float, reference_accuracy: float) -> float:
    """Validation accuracy moved by the change of mean confidence, clipped to [0, 1]."""
    return float(np.clip(reference_accuracy + float(np.mean(conf)) - reference_conf_mean, 0, 1))


def estimate_interval(
    estimate: float, slips: np.ndarray, n: int, z: float = 1.959964
) -> tuple[float, float]:
    """A 95 % interval for the accuracy of a window of ``n`` rows around a label-free
    ``estimate`` that is a mean over the window's rows (ATC: the share above the threshold;
    DoC: the mean confidence, moved). ``slips`` holds, for each labelled reference row, what the
    estimator counts for it minus whether the model got it right; their spread is how far the
    estimate and the accuracy part on ``n`` rows, and on the reference the estimator was fitted
    on: ``se = sd(slips) * sqrt(1 / n + 1 / len(slips))``. It holds where the estimator's
    assumption holds (the errors look to the model as they did on the reference); it does not
    widen for a shift that breaks it -- the export's track record on the study's shifted splits
    says how far that has gone. Clipped to [0, 1]; it always contains ``estimate``."""
    slips = np.asarray(slips, dtype=np.float64)
    se = float(np.std(slips, ddof=1)) * math.sqrt(1 / n + 1 / len(slips))
    return max(0.0, estimate - z * se), min(1.0, estimate + z * se)


def conformal(
    ref_logits: Tensor, ref_labels: np.ndarray, logits: Tensor, labels: np.ndarray, coverage: float
) -> tuple[float, Proportion | None]:
    """Split-conformal sets (LAC; ``safeadapt.safety.conformal``) calibrated on the reference:
    the window's mean set size, and their coverage of its labelled rows with a Wilson interval
    (None without labels). Under exchangeability with the reference, coverage >= ``coverage``."""
    from safeadapt.safety.conformal import calibrate, prediction_sets

    ref = ref_logits.double().softmax(1).numpy()
    threshold = calibrate(ref, np.asarray(ref_labels), 1 - coverage, "lac")
    sets = prediction_sets(logits.double().softmax(1).numpy(), threshold, "lac")
    known = np.asarray(labels) >= 0
    n = int(known.sum())
    if n == 0:
        return float(sets.sum(1).mean()), None
    covered = int(sets[known, np.asarray(labels)[known]].sum())
    low, high = wilson_interval(covered, n)
    return float(sets.sum(1).mean()), Proportion(covered / n, low, high, n)


def label_shift(
    ref_pred: np.ndarray, ref_labels: np.ndarray, window_share: np.ndarray, classes: int
) -> tuple[tuple[float, ...], float]:
    """Black-box shift estimation (Lipton et al., ICML 2018): with ``C[i, j] = P(pred i | label
    j)`` on the reference, the window's label shares ``q`` solve ``C q = window_share`` (least
    squares, clipped at 0 and renormalised); the accuracy under that label shift is
    ``sum_j q_j C[j, j]`` -- the estimate that holds where ATC fails (a label shift with the
    class-conditional inputs unchanged)."""
    ref_pred = np.asarray(ref_pred, dtype=np.int64)
    ref_labels = np.asarray(ref_labels, dtype=np.int64)
    counts = np.bincount(ref_pred * classes + ref_labels, minlength=classes * classes)
    counts = counts.reshape(classes, classes).astype(np.float64)  # [pred, label]
    per_label = counts.sum(0)
    confusion = np.divide(counts, per_label, out=np.zeros_like(counts), where=per_label > 0)
    q, *_ = np.linalg.lstsq(confusion, np.asarray(window_share, dtype=float), rcond=None)
    q = np.clip(q, 0, None)
    q = q / q.sum() if q.sum() > 0 else np.full(classes, 1 / classes)
    return tuple(float(x) for x in q), float(q @ np.diag(confusion))


BBSE_DRAWS = 200
# above this many classes each draw's least-squares solve (O(K^3)) makes the bootstrap the
# window's slowest part (1,000 classes: 20 s a window) while a reference of at most 1,000 rows
# holds about one row per class, too few for a confusion matrix to say anything: no interval
BBSE_MAX_CLASSES = 100


def label_shift_interval(
    ref_pred: np.ndarray,
    ref_labels: np.ndarray,
    window_pred: np.ndarray,
    classes: int,
    estimate: float,
    seed: int,
) -> tuple[float, float] | None:
    """A 95 % interval for the window's accuracy around :func:`label_shift`'s: a percentile
    bootstrap of the reference's rows (its confusion matrix) and the window's predictions,
    resampled with replacement ``BBSE_DRAWS`` times (seeded), each draw's accuracy then drawn
    as the window's own share of right answers (binomial on its rows) -- so the interval is for
    the window's accuracy, as ATC's and DoC's are; widened to hold ``estimate`` where the
    percentiles do not. None above ``BBSE_MAX_CLASSES`` classes."""
    if classes > BBSE_MAX_CLASSES:
        return None
    ref_pred, ref_labels = np.asarray(ref_pred), np.asarray(ref_labels)
    window_pred = np.asarray(window_pred)
    n_ref, n = len(ref_pred), len(window_pred)

    def draw(rng: np.random.Generator) -> float:
        r, w = rng.integers(0, n_ref, n_ref), rng.integers(0, n, n)
        share = np.bincount(window_pred[w], minlength=classes) / n
        return label_shift(ref_pred[r], ref_labels[r], share, classes)[1]

    return window_accuracy_interval(draw, n, estimate, seed, BBSE_DRAWS)


def window_accuracy_interval(
    draw, n: int, estimate: float, seed: int, draws: int
) -> tuple[float, float]:
    """A 95 % percentile interval for the accuracy of a window of ``n`` rows: ``draws`` times
    (seeded), ``draw(rng)`` gives the expected accuracy under one bootstrap resample, and the
    window's own share of right answers is drawn from it (binomial on its rows) -- so the
    interval is for the window's accuracy, as ATC's and DoC's are; widened to hold
    ``estimate`` where the percentiles do not (BBSE's and ALine-D's intervals)."""
    from safeadapt.metrics.intervals import contain, percentile_interval

    rng = np.random.default_rng(seed)
    values = [rng.binomial(n, min(max(draw(rng), 0.0), 1.0)) / n for _ in range(draws)]
    return contain(*percentile_interval(np.asarray(values)), estimate)


def accuracy(pred: np.ndarray, labels: np.ndarray) -> Proportion | None:
    """Accuracy on the labelled rows (label >= 0) with its Wilson interval; None without any."""
    known = np.asarray(labels) >= 0
    n = int(known.sum())
    if n == 0:
        return None
    right = int((np.asarray(pred)[known] == np.asarray(labels)[known]).sum())
    low, high = wilson_interval(right, n)
    return Proportion(right / n, low, high, n)


def probit(p: np.ndarray, n: int) -> np.ndarray:
    """``Phi^-1(p)`` of shares counted on ``n`` rows, clipped half a row from 0 and 1 (a share
    of 1 has no finite probit)."""
    from scipy.stats import norm

    edge = 0.5 / max(n, 1)
    return norm.ppf(np.clip(np.asarray(p, dtype=np.float64), edge, 1 - edge))


def pairs(models: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(models) for j in range(i + 1, models)]


def pair_agreements(preds: np.ndarray) -> np.ndarray:
    """For predictions ``(models, rows)``, the share of rows on which each pair ``i < j``
    predicts the same class (in :func:`pairs` order)."""
    preds = np.asarray(preds)
    return np.asarray([(preds[i] == preds[j]).mean() for i, j in pairs(len(preds))])


class AgreementLine(NamedTuple):
    accuracy: np.ndarray  # (models,) the estimated window accuracies
    slope: float
    bias: float
    r2: float  # of the agreement line over the pairs (NaN: no spread to fit a line on)
    fit_p: float  # the residuals against the agreements' sampling noise (chi-square p-value)


def aline_d(
    ref_accuracy: np.ndarray, ref_agreement: np.ndarray, window_agreement: np.ndarray,
    n_ref: int, n_window: int,
) -> AgreementLine:  # fmt: skip
    """ALine-D (Baek et al., NeurIPS 2022): the window accuracies of ``models`` models from their
    reference accuracies and the pairs' agreements on the reference and on the window. The
    agreement line ``probit(agr_win) = slope * probit(agr_ref) + bias`` is fitted over the pairs
    (least squares); assuming the models' accuracies lie on the same line, each pair ``(i, j)``
    gives ``(u_i + u_j) / 2 = probit(agr_win_ij) + slope * ((probit(acc_ref_i) +
    probit(acc_ref_j)) / 2 - probit(agr_ref_ij))``, solved for ``u`` by least squares over the
    pairs (three models or more: the system has full rank); the accuracies are ``Phi(u)``."""
    from scipy.stats import norm

    acc = probit(ref_accuracy, n_ref)
    x, y = probit(ref_agreement, n_ref), probit(window_agreement, n_window)
    spread = float(((x - x.mean()) ** 2).sum())
    if spread > 1e-12:
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / spread)
        bias = float(y.mean() - slope * x.mean())
        residual = y - (slope * x + bias)
        total = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float((residual**2).sum()) / total if total > 1e-12 else 1.0
    else:  # every pair agrees alike on the reference: no line to read a slope from
        slope, bias, r2 = 1.0, float(y.mean() - x.mean()), float("nan")
        residual = y - (slope * x + bias)
    fit_p = _line_fit_p(residual, x, y, slope, n_ref, n_window)
    index = pairs(len(acc))
    system = np.zeros((len(index), len(acc)))
    target = np.empty(len(index))
    for p, (i, j) in enumerate(index):
        system[p, [i, j]] = 0.5
        target[p] = y[p] + slope * ((acc[i] + acc[j]) / 2 - x[p])
    u, *_ = np.linalg.lstsq(system, target, rcond=None)
    return AgreementLine(norm.cdf(u), slope, bias, r2, fit_p)


def _line_fit_p(residual, x, y, slope: float, n_ref: int, n_window: int) -> float:
    """Whether the pairs lie on the line up to the sampling noise of their agreements: the
    residuals' sum of squares, each over its variance (the delta method on the probit of a
    share of ``n`` rows, window and reference), against a chi-square with pairs - 2 degrees of
    freedom (the pairs share rows, so this is approximate). 1.0 with fewer than three pairs."""
    from scipy.stats import chi2, norm

    dof = len(residual) - 2
    if dof < 1:
        return 1.0

    def variance(z: np.ndarray, n: int) -> np.ndarray:
        p = norm.cdf(z)
        return p * (1 - p) / n / np.maximum(norm.pdf(z), 1e-12) ** 2

    var = variance(y, n_window) + slope**2 * variance(x, n_ref)
    return float(chi2.sf(float((residual**2 / np.maximum(var, 1e-12)).sum()), dof))


def aline_estimate(
    ref_preds: np.ndarray, ref_labels: np.ndarray, window_preds: np.ndarray
) -> AgreementLine:
    """:func:`aline_d` from predictions ``(models, rows)`` on the labelled reference and on the
    window (the reference's labels give each model's accuracy there)."""
    ref_preds, window_preds = np.asarray(ref_preds), np.asarray(window_preds)
    accuracy = (ref_preds == np.asarray(ref_labels)[None]).mean(1)
    return aline_d(accuracy, pair_agreements(ref_preds), pair_agreements(window_preds),
                   ref_preds.shape[1], window_preds.shape[1])  # fmt: skip

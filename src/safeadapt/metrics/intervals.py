"""Uncertainty: confidence intervals from per-example outputs and paired tests between models.

Pure functions on NumPy arrays:

- :func:`wilson_interval` -- closed-form 95 % interval of an accuracy (Wilson 1927), the same as
  ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.
- :func:`bootstrap_interval` -- percentile bootstrap over examples for any metric of per-example
  arrays (seeded; Efron & Tibshirani 1993), as ``scipy.stats.bootstrap(method="percentile")``.
- :func:`resampled_means` -- the same bootstrap, vectorised, for any statistic of per-example
  *sums* (accuracy, NLL, Brier, binned ECE): one product of draw counts per chunk of resamples,
  the same draws as :func:`bootstrap_interval` for the same seed.
- :func:`stratified_bootstrap` -- percentile bootstrap of a statistic of several groups of
  examples (splits, tasks, ID vs OOD), each group resampled within itself.
- :func:`t_interval` -- mean ± t_{0.975, n-1} · s / sqrt(n) across seeds (n >= 2).
- :func:`mcnemar_exact` -- McNemar's exact test for two classifiers scored on the same examples:
  a two-sided binomial test on the discordant pairs (b = only A right, c = only B right).
- :func:`paired_bootstrap` -- interval and two-sided p-value of ``metric(A) - metric(B)`` on the
  same examples, resampled together.
- :func:`holm` -- Holm's step-down adjustment of several p-values (Holm 1979).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
N_RESAMPLES = 1000


def wilson_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials.

    Example: ``wilson_interval(80, 100)`` -> ``(0.711, 0.867)`` (rounded).
    """
    if n <= 0:
        raise ValueError(f"'n' must be positive; got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"'k' must be in [0, n={n}]; got {k}")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k = 0 or k = n rounding leaves the bound a hair inside (0.9999999999999998 at 60/60):
    # the interval must contain its estimate
    return contain(max(0.0, centre - half), min(1.0, centre + half), p)


def contain(lo: float, hi: float, estimate: float | None) -> tuple[float, float]:
    """``(lo, hi)`` widened just enough to contain ``estimate`` (every reported interval
    contains its estimate: a percentile bootstrap of a skewed statistic, or rounding at 0 / n
    and n / n, can leave it a hair outside). ``None`` or NaN estimates leave it unchanged."""
    if lo is None or hi is None:
        return lo, hi  # type: ignore[return-value]
    if estimate is None or math.isnan(float(estimate)):
        return float(lo), float(hi)
    return float(min(lo, estimate)), float(max(hi, estimate))


def bootstrap_interval(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(*arrays)``; rows of every array are resampled
    together (they describe the same examples). ``arrays``: each ``(N, ...)``."""
    n = _rows(arrays)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, n)
        stats[i] = metric(*(a[idx] for a in arrays))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return contain(lo, hi, float(metric(*arrays)))


def resampled_means(
    contrib: np.ndarray, n_resamples: int = N_RESAMPLES, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Column means of ``contrib`` ``(N, P)`` (or ``(N,)``) over ``n_resamples`` bootstrap draws
    of its rows, ``(R, P)``. Each draw is a vector of counts; a chunk of draws is one product
    with ``contrib`` (no Python loop per draw). The draws are :func:`bootstrap_interval`'s for
    the same generator state, so percentiles of a statistic of these means equal its interval.
    """
    values = np.asarray(contrib, dtype=float)
    values = values[:, None] if values.ndim == 1 else values
    n = values.shape[0]
    if n == 0:
        raise ValueError("cannot resample zero examples")
    rng = rng if rng is not None else np.random.default_rng(0)
    out = np.empty((n_resamples, values.shape[1]))
    chunk = max(1, 2_000_000 // n)  # at most ~16 MB of counts at once
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, (r, n)) + n * np.arange(r)[:, None]
        counts = np.bincount(idx.ravel(), minlength=r * n).reshape(r, n)
        out[start : start + r] = counts @ values / n
    return out


def percentile_interval(stats: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap statistics ``(R,)``."""
    alpha = (1 - level) / 2
    lo, hi = np.quantile(np.asarray(stats, dtype=float), [alpha, 1 - alpha])
    return float(lo), float(hi)


def stratified_bootstrap(
    statistic: Callable[[dict[str, list[np.ndarray]]], float],
    parts: dict[str, Sequence[np.ndarray]],
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap of ``statistic({group: arrays})``: each group's examples (columns)
    are resampled within the group, and the arrays of one group (each ``(S, N)``, one row per
    seed) share the resampled indices. A statistic returning a vector gets one interval per
    entry (arrays ``lo``, ``hi``) from the same resamples."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        draw = {}
        for name, arrays in parts.items():
            m = arrays[0].shape[1]
            idx = rng.integers(0, m, m)
            draw[name] = [a[:, idx] for a in arrays]
        stats.append(statistic(draw))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(np.asarray(stats, dtype=float), [alpha, 1 - alpha], axis=0)
    full = {name: list(arrays) for name, arrays in parts.items()}
    estimate = np.asarray(statistic(full), dtype=float)  # the statistic on the data themselves
    if np.ndim(lo) == 0:
        return contain(float(lo), float(hi), float(estimate))
    ok = ~np.isnan(estimate)  # a statistic of several values: one interval per value
    return np.where(ok, np.fmin(lo, estimate), lo), np.where(ok, np.fmax(hi, estimate), hi)


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Student-t interval of the mean of ``values`` (``None`` for fewer than two)."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if len(v) < 2:
        return None
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, len(v) - 1)) * float(v.std(ddof=1)) / math.sqrt(len(v))
    mean = float(v.mean())
    return contain(mean - half, mean + half, mean)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of A against B: ``difference`` = acc(A) - acc(B); ``only_a`` /
    ``only_b`` = the discordant examples only A / only B gets right."""

    difference: float
    only_a: int
    only_b: int
    p_value: float


@dataclass(frozen=True)
class PairedDifference:
    """``metric(A) - metric(B)`` with its percentile interval and two-sided bootstrap p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's exact test on paired correctness ``(N,)`` booleans of models A and B.

    Returns :class:`McNemar` (``difference`` = acc(A) - acc(B), ``only_a`` = b, ``only_b`` = c,
    ``p_value`` = p) where p is
    the two-sided binomial probability of a split at least as uneven as (b, c) under p = 1/2
    (1.0 when there are no discordant pairs).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired arrays must be 1-D of one length; got {a.shape} and {b.shape}")
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    m = only_a + only_b
    if m == 0:
        p = 1.0
    else:
        from scipy.stats import binom

        p = min(1.0, 2.0 * float(binom.cdf(min(only_a, only_b), m, 0.5)))
    return McNemar(float(a.mean() - b.mean()) if len(a) else 0.0, only_a, only_b, p)


def paired_bootstrap(
    metric: Callable[..., float],
    arrays_a: Sequence[np.ndarray],
    arrays_b: Sequence[np.ndarray],
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> PairedDifference:
    """``metric(*A) - metric(*B)`` with a percentile interval and a two-sided bootstrap p-value
    (twice the smaller share of resampled differences on either side of 0); A's and B's rows are
    the same examples and are resampled with the same indices."""
    n = _rows([*arrays_a, *arrays_b])
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, n)
        diffs[i] = metric(*(x[idx] for x in arrays_a)) - metric(*(x[idx] for x in arrays_b))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(diffs, [alpha, 1 - alpha])
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    difference = float(metric(*arrays_a) - metric(*arrays_b))
    lo, hi = contain(lo, hi, difference)
    return PairedDifference(difference, lo, hi, float(p))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def verdict(difference: float, p_adjusted: float, alpha: float = 1 - LEVEL) -> str:
    """``better`` / ``worse`` (for the first model, where higher is better) when the adjusted
    p-value is below ``alpha``, else ``not distinguishable``."""
    if p_adjusted >= alpha or difference == 0:
        return "not distinguishable"
    return "better" if difference > 0 else "worse"


def _rows(arrays: Sequence[np.ndarray]) -> int:
    if not arrays:
        raise ValueError("give at least one array")
    n = len(arrays[0])
    if n == 0 or any(len(a) != n for a in arrays):
        raise ValueError(
            f"arrays must be non-empty and of one length; got {[len(a) for a in arrays]}"
        )
    return n

"""Per-example outputs of a study's runs (``predictions.parquet``) and the intervals computed
from them: Wilson for one seed's accuracy, percentile bootstraps over examples otherwise (the same
example indices for every seed). Pure NumPy on the stored probabilities;
``safeadapt.study.recommend`` uses them for the table and the paired verdicts, and hands
``Outputs`` to the safety families for their own intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from safeadapt.metrics.intervals import percentile_interval, resampled_means, wilson_interval
from safeadapt.results.predictions import RunPredictions, SplitPredictions


class SplitOutputs(NamedTuple):
    """One split's outputs over a variant's seeds (sorted): ``labels (N,)``, ``correct (S, N)``
    and ``probs (S, N, K)``."""

    labels: np.ndarray
    correct: np.ndarray
    probs: np.ndarray


class Outputs:
    """A variant's per-example outputs, one run per seed (``predictions.parquet``, read into
    :class:`~safeadapt.results.predictions.RunPredictions`), aligned by (split, example index)
    -- every seed sees the same evaluation examples. A seed's entry may be the stored frame; it
    is read once here."""

    def __init__(self, runs: Mapping[int, RunPredictions | Any]) -> None:
        self.runs = {
            seed: r if isinstance(r, RunPredictions) else RunPredictions.from_frame(r)
            for seed, r in runs.items()
            if r is not None
        }

    def __bool__(self) -> bool:
        return bool(self.runs)

    @property
    def seeds(self) -> list[int]:
        return sorted(self.runs)

    def split_names(self) -> list[str]:
        """The splits with outputs (first seed's), sorted."""
        return sorted(self.runs[min(self.runs)].splits) if self.runs else []

    def _parts(self, name: str) -> list[SplitPredictions] | None:
        """One split's outputs per seed (sorted); ``None`` unless every seed has them, alike
        in length."""
        parts = [self.runs[s].splits.get(name) for s in self.seeds]
        if not parts or any(p is None or not len(p) for p in parts):
            return None
        if any(len(p) != len(parts[0]) for p in parts):
            return None
        return parts

    def split(self, name: str) -> SplitOutputs | None:
        """One split's labels, correctness and probabilities, seeds sorted (``None`` without
        outputs for that split)."""
        parts = self._parts(name)
        if parts is None:
            return None
        labels = parts[0].label
        correct = np.stack([p.pred == labels for p in parts])
        probs = np.stack([p.probs for p in parts])
        return SplitOutputs(labels, correct, probs)

    def labels_of(self, split: str, name: str) -> np.ndarray | None:
        """A per-example column of any type (e.g. ``group``) of one split, in index order; the
        same for every seed (the examples are), read from the first seed."""
        if not self.runs:
            return None
        part = self.runs[min(self.runs)].splits.get(split)
        return part.columns.get(name) if part is not None and len(part) else None

    def column(self, split: str, name: str) -> np.ndarray | None:
        """A numeric per-example column of one split, ``(S, N)`` seeds sorted (``None`` where a
        seed lacks it)."""
        parts = self._parts(split)
        if parts is None or any(name not in p.columns for p in parts):
            return None
        rows = [np.asarray(p.columns[name], dtype=float) for p in parts]
        if any(np.isnan(r).any() for r in rows):
            return None
        return np.stack(rows)


N_BINS = 15  # ECE's equal-width bins, as ``metrics.calibration``


def _ece_contrib(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Per-example ECE contributions ``(N, n_bins)``: ``correct - confidence`` in the example's
    (right-closed) confidence bin, zero elsewhere. ECE = sum over bins of |column mean|."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    bins = np.clip(np.ceil(conf * n_bins) - 1, 0, n_bins - 1).astype(int)
    out = np.zeros((len(labels), n_bins))
    out[np.arange(len(labels)), bins] = correct - conf
    return out


def _ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Equal-width-bin ECE (right-closed bins, as ``metrics.calibration``), NumPy for speed."""
    return float(np.abs(_ece_contrib(probs, labels, n_bins).mean(0)).sum())


def _nll_each(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))


def _brier_each(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    onehot = np.eye(probs.shape[1])[labels]
    return ((probs - onehot) ** 2).sum(1)


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(_nll_each(probs, labels).mean())


def _brier(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(_brier_each(probs, labels).mean())


PROB_METRICS = {"ece": _ece, "nll": _nll, "brier": _brier}


def _seed_mean_interval(probs: np.ndarray, labels: np.ndarray, key: str, seed: int = 0):
    """Bootstrap interval over examples of the seed-mean of a probability metric, ``probs``
    ``(S, N, K)``; the same example draws for every seed. Vectorised: NLL and Brier are means of
    per-example values, ECE a sum over bins of |mean contribution| (``resampled_means``)."""
    if key == "ece":
        contrib = np.concatenate([_ece_contrib(p, labels) for p in probs], axis=1)
        means = resampled_means(contrib, rng=np.random.default_rng(seed))
        stats = np.abs(means.reshape(len(means), len(probs), N_BINS)).sum(-1).mean(-1)
    else:
        each = _nll_each if key == "nll" else _brier_each
        contrib = np.mean([each(p, labels) for p in probs], axis=0)
        stats = resampled_means(contrib, rng=np.random.default_rng(seed))[:, 0]
    return percentile_interval(stats)


def _accuracy_interval(correct: np.ndarray, seed: int = 0) -> tuple[float, float, str]:
    """Interval of the seed-mean accuracy: Wilson for one seed, else a bootstrap over examples
    (the same example indices for every seed)."""
    if correct.shape[0] == 1:
        lo, hi = wilson_interval(int(correct.sum()), correct.shape[1])
        return lo, hi, "wilson"
    stats = resampled_means(correct.mean(0), rng=np.random.default_rng(seed))[:, 0]
    return (*percentile_interval(stats), "bootstrap")


def _mean_accuracy_interval(parts: list[np.ndarray], seed: int = 0) -> tuple[float, float, str]:
    """Interval of the mean over splits of the seed-mean accuracy: a stratified bootstrap (each
    split resampled within itself, with its own stream of the seed)."""
    if len(parts) == 1:
        return _accuracy_interval(parts[0], seed)
    streams = np.random.SeedSequence(seed).spawn(len(parts))
    stats = np.mean(
        [
            resampled_means(c.mean(0), rng=np.random.default_rng(s))[:, 0]
            for c, s in zip(parts, streams, strict=True)
        ],
        axis=0,
    )
    return (*percentile_interval(stats), "bootstrap (stratified by split)")


def example_intervals(outputs: Outputs, splits: Sequence[str]) -> dict[str, tuple]:
    """``{score key: (low, high, method)}`` of the prediction metrics from per-example outputs
    (the safety families add their own: ``safeadapt.safety.run_intervals``)."""
    out: dict[str, tuple] = {}
    data = {name: outputs.split(name) for name in splits}
    data = {k: v for k, v in data.items() if v is not None}
    test, val = (data.pop(name, None) for name in ("test", "val"))
    if test is not None:
        out.update(id_accuracy=_accuracy_interval(test.correct))
        out.update({k: (*_seed_mean_interval(test.probs, test.labels, k), "bootstrap")
                    for k in PROB_METRICS})  # fmt: skip
    if val is not None:
        out.update(
            val_accuracy=_accuracy_interval(val.correct),
            val_ece=(*_seed_mean_interval(val.probs, val.labels, "ece"), "bootstrap"),
        )
    ood = {k: v.correct for k, v in data.items() if k.startswith("ood:")}
    out.update({f"accuracy:{k}": _accuracy_interval(c) for k, c in ood.items()})
    if ood:
        out.update(ood_accuracy=_mean_accuracy_interval(list(ood.values())))
    ood_val = [v.correct for k, v in data.items() if k.startswith("ood-val:")]
    if ood_val:
        out.update(ood_val_accuracy=_mean_accuracy_interval(ood_val))
    return out

"""Per-example outputs of a study's runs (``predictions.parquet``) and the intervals computed
from them: Wilson for one seed's accuracy, percentile bootstraps over examples otherwise (the same
example indices for every seed). Pure NumPy on the stored probabilities;
``safeadapt.study.recommend`` uses them for the table and the paired verdicts, and hands
``Outputs`` to the safety families for their own intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from safeadapt.metrics.intervals import bootstrap_interval, stratified_bootstrap, wilson_interval


class Outputs:
    """A variant's per-example outputs, one frame per seed (``predictions.parquet``), aligned by
    (split, example index) -- every seed sees the same evaluation examples."""

    def __init__(self, frames: dict[int, Any]) -> None:
        self.frames = {seed: f for seed, f in frames.items() if f is not None}

    def __bool__(self) -> bool:
        return bool(self.frames)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``labels (N,)``, ``correct (S, N)`` and ``probs (S, N, K)`` of one split, seeds sorted
        (``None`` without outputs for that split)."""
        if not self.frames:
            return None
        parts = []
        for seed in sorted(self.frames):
            f = self.frames[seed]
            rows = f[f["split"] == name].sort_values("index")
            if rows.empty:
                return None
            parts.append(rows)
        labels = parts[0]["label"].to_numpy()
        if any(len(p) != len(labels) for p in parts):
            return None
        correct = np.stack([(p["pred"].to_numpy() == labels) for p in parts])
        probs = np.stack([np.stack(p["probs"].to_numpy()) for p in parts])
        return labels, correct, probs

    def labels_of(self, split: str, name: str) -> np.ndarray | None:
        """A per-example column of any type (e.g. ``group``) of one split, in index order; the
        same for every seed (the examples are), read from the first seed."""
        if not self.frames:
            return None
        f = self.frames[min(self.frames)]
        if name not in f.columns:
            return None
        rows = f[f["split"] == split].sort_values("index")
        return rows[name].to_numpy() if len(rows) else None

    def column(self, split: str, name: str) -> np.ndarray | None:
        """A numeric per-example column of one split, ``(S, N)`` seeds sorted (``None`` where a
        seed lacks it)."""
        rows = []
        for seed in sorted(self.frames):
            f = self.frames[seed]
            if name not in f.columns:
                return None
            values = f[f["split"] == split].sort_values("index")[name].to_numpy(dtype=float)
            if len(values) == 0 or np.isnan(values).any():
                return None
            rows.append(values)
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            return None
        return np.stack(rows)


def _ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Equal-width-bin ECE (right-closed bins, as ``metrics.calibration``), NumPy for speed."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    bins = np.clip(np.ceil(conf * n_bins) - 1, 0, n_bins - 1).astype(int)
    gap = np.bincount(bins, weights=correct - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / len(labels))


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def _brier(probs: np.ndarray, labels: np.ndarray) -> float:
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(1).mean())


PROB_METRICS = {"ece": _ece, "nll": _nll, "brier": _brier}


def _accuracy_interval(correct: np.ndarray, seed: int = 0) -> tuple[float, float, str]:
    """Interval of the seed-mean accuracy: Wilson for one seed, else a bootstrap over examples
    (the same example indices for every seed)."""
    if correct.shape[0] == 1:
        lo, hi = wilson_interval(int(correct.sum()), correct.shape[1])
        return lo, hi, "wilson"
    lo, hi = bootstrap_interval(lambda c: c.mean(), correct.T, seed=seed)
    return lo, hi, "bootstrap"


def _mean_accuracy_interval(parts: list[np.ndarray], seed: int = 0) -> tuple[float, float, str]:
    """Interval of the mean over splits of the seed-mean accuracy: a stratified bootstrap (each
    split resampled within itself)."""
    if len(parts) == 1:
        return _accuracy_interval(parts[0], seed)
    lo, hi = stratified_bootstrap(
        lambda d: float(np.mean([a[0].mean() for a in d.values()])),
        {str(i): [c] for i, c in enumerate(parts)},
        seed=seed,
    )
    return lo, hi, "bootstrap (stratified by split)"


def example_intervals(outputs: Outputs, splits: Sequence[str]) -> dict[str, tuple]:
    """``{score key: (low, high, method)}`` of the prediction metrics from per-example outputs
    (the safety families add their own: ``safeadapt.safety.run_intervals``)."""
    out: dict[str, tuple] = {}
    data = {name: outputs.split(name) for name in splits}
    data = {k: v for k, v in data.items() if v is not None}
    if "test" in data:
        labels, correct, probs = data["test"]
        out["id_accuracy"] = _accuracy_interval(correct)
        for key, fn in PROB_METRICS.items():
            lo, hi = bootstrap_interval(
                lambda y, *p, fn=fn: float(np.mean([fn(q, y) for q in p])),
                labels,
                *probs,
            )
            out[key] = (lo, hi, "bootstrap")
    if "val" in data:
        out["val_accuracy"] = _accuracy_interval(data["val"][1])
        labels, _, probs = data["val"]
        lo, hi = bootstrap_interval(
            lambda y, *p: float(np.mean([_ece(q, y) for q in p])), labels, *probs
        )
        out["val_ece"] = (lo, hi, "bootstrap")
    ood = [k for k in data if k.startswith("ood:")]
    for k in ood:
        out[f"accuracy:{k}"] = _accuracy_interval(data[k][1])
    if ood:
        out["ood_accuracy"] = _mean_accuracy_interval([data[k][1] for k in ood])
    ood_val = [k for k in data if k.startswith("ood-val:")]
    if ood_val:
        out["ood_val_accuracy"] = _mean_accuracy_interval([data[k][1] for k in ood_val])
    return out

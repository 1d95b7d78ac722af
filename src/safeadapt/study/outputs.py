"""Per-example outputs of a study's runs (``predictions.parquet``) and the intervals computed
from them: Wilson for one seed's accuracy, percentile bootstraps over examples otherwise (the same
example indices for every seed), a two-sample bootstrap for OOD AUROC. Pure NumPy on the stored
probabilities; ``safeadapt.study.recommend`` uses them for the table and the paired verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from safeadapt.metrics.intervals import bootstrap_interval, wilson_interval


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


def _stratified(
    statistic, parts: dict[str, Sequence[np.ndarray]], n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap of ``statistic({name: arrays})``: each part's examples resampled
    within the part; the arrays of one part (each ``(S, N)``) share the resampled indices."""
    rng = np.random.default_rng(seed)
    stats = np.empty(n)
    for i in range(n):
        draw = {}
        for name, arrays in parts.items():
            m = arrays[0].shape[1]
            idx = rng.integers(0, m, m)
            draw[name] = [a[:, idx] for a in arrays]
        stats[i] = statistic(draw)
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


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
    lo, hi = _stratified(
        lambda d: float(np.mean([a[0].mean() for a in d.values()])),
        {str(i): [c] for i, c in enumerate(parts)},
        seed=seed,
    )
    return lo, hi, "bootstrap (stratified by split)"


def rank_auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + P(tie) / 2 by ranks (Mann-Whitney), as ``roc_auc_score``."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _auroc_interval(
    test_probs: np.ndarray, ood_probs: list[np.ndarray], n: int = 1000, seed: int = 0
) -> tuple[float, float, str]:
    """Interval of the mean over OOD splits (and seeds) of the max-softmax AUROC, ID test vs
    each OOD split: a two-sample bootstrap (ID and OOD examples resampled separately)."""
    seeds = range(test_probs.shape[0])

    def mean_auroc(d) -> float:
        msp_id = d["test"][0]
        return float(
            np.mean([rank_auroc(msp_id[s], d[k][0][s]) for k in d if k != "test" for s in seeds])
        )

    parts = {"test": [test_probs.max(-1)]}
    parts.update({str(i): [p.max(-1)] for i, p in enumerate(ood_probs)})
    lo, hi = _stratified(mean_auroc, parts, n=n, seed=seed)
    return lo, hi, "bootstrap (ID and OOD resampled separately)"


def _shift_intervals(outputs: Outputs, ood: Sequence[str]) -> dict[str, tuple]:
    """Feature distortion (mean L2 shift on ID test) and its mean OOD/ID ratio, per seed then
    averaged, bootstrapped over examples."""
    out: dict[str, tuple] = {}
    test = outputs.column("test", "feature_shift")
    if test is None:
        return out
    lo, hi = _stratified(lambda d: float(d["test"][0].mean()), {"test": [test]})
    out["distortion_id"] = (lo, hi, "bootstrap")
    others = {k: outputs.column(k, "feature_shift") for k in ood}
    others = {k: v for k, v in others.items() if v is not None}
    if others and (test.mean(1) > 0).all():  # a frozen backbone has no ratio

        def ratio(d) -> float:
            id_l2 = d["test"][0].mean(1)  # (S,)
            return float(np.mean([(d[k][0].mean(1) / id_l2).mean() for k in others]))

        lo, hi = _stratified(ratio, {"test": [test], **{k: [v] for k, v in others.items()}})
        out["distortion_ood_ratio"] = (lo, hi, "bootstrap (stratified by split)")
    return out


def _forgetting_interval(outputs: Outputs) -> tuple | None:
    """Mean over reference tasks of LP accuracy after - before, paired on each task's test
    examples (before and after resampled together), stratified by task. The probes' own fitting
    noise is not in it: their training examples are fixed."""
    names = sorted(
        {
            s.split(":", 1)[1]
            for f in outputs.frames.values()
            for s in set(f["split"])
            if s.startswith("reference:")
        }
    )
    parts = {}
    for name in names:
        after = outputs.split(f"reference:{name}")
        before = outputs.split(f"reference-before:{name}")
        if after is None or before is None:
            return None
        parts[name] = [after[1].astype(float), before[1].astype(float)]
    if not parts:
        return None
    lo, hi = _stratified(
        lambda d: float(np.mean([(a.mean() - b.mean()) for a, b in d.values()])), parts
    )
    return lo, hi, "paired bootstrap (stratified by task)"


def _effective_robustness_interval(
    test_correct: np.ndarray, ood_correct: dict[str, np.ndarray], fits: dict[str, dict]
) -> tuple | None:
    """OOD accuracy above the LP trend at the run's ID accuracy, per seed, averaged over splits
    and seeds; ID test and each OOD split resampled separately. The trend is held fixed."""
    from scipy.stats import norm

    from safeadapt.metrics.effective import _probit

    splits = [k for k in ood_correct if k in fits]
    if not splits:
        return None

    def er(d) -> float:
        id_acc = d["test"][0].mean(1)  # (S,)
        vals = []
        for k in splits:
            pred = norm.cdf(fits[k]["slope"] * _probit(id_acc) + fits[k]["intercept"])
            vals.append(d[k][0].mean(1) - pred)
        return float(np.mean(vals))

    parts = {"test": [test_correct.astype(float)]}
    parts.update({k: [ood_correct[k].astype(float)] for k in splits})
    lo, hi = _stratified(er, parts)
    return lo, hi, "bootstrap (ID and OOD resampled separately; trend fixed)"


def example_intervals(
    outputs: Outputs, splits: Sequence[str], trend_fits: dict[str, dict] | None = None
) -> dict[str, tuple]:
    """``{score key: (low, high, method)}`` from per-example outputs; ``trend_fits`` (``{ood
    split: {slope, intercept}}``) adds effective robustness."""
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
    if ood and "test" in data:
        out["ood_auroc"] = _auroc_interval(data["test"][2], [data[k][2] for k in ood])
    ood_val = [k for k in data if k.startswith("ood-val:")]
    if ood_val:
        out["ood_val_accuracy"] = _mean_accuracy_interval([data[k][1] for k in ood_val])
    out.update(_shift_intervals(outputs, ood))
    forgetting = _forgetting_interval(outputs)
    if forgetting is not None:
        out["forgetting"] = forgetting
    if trend_fits and ood and "test" in data:
        er = _effective_robustness_interval(
            data["test"][1], {k: data[k][1] for k in ood}, trend_fits
        )
        if er is not None:
            out["effective_robustness"] = er
    return out

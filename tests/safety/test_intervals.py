"""The safety families' intervals from per-example outputs (``Family.intervals`` over an
``Outputs``): feature distortion, concept forgetting, effective robustness, MSP AUROC and the
sampled accuracies (attacks, corruptions)."""

import numpy as np
import pandas as pd

from safeadapt.safety import family
from safeadapt.study.outputs import Outputs

# stored results as a run's record holds them (only what the intervals read varies)
DISTORTION = [
    {
        "test": {"l2": 1.0, "cosine": 0.9, "relative_l2": 0.1},
        "ood:a": {"l2": 2.0, "cosine": 0.8, "relative_l2": 0.2, "l2_ratio_to_id": 2.0},
    }
]
FORGETTING = [{"tasks": {"r": {"before": 0.8, "after": 0.8, "delta": 0.0}}}]


def _intervals(name, outputs, results):
    fam = family(name)
    return fam.intervals([fam.read(r) for r in results], outputs)


def _rows(split, labels, preds, k=2, shift=None):
    probs = np.eye(k)[preds] * 0.8 + 0.2 / k
    frame = pd.DataFrame(
        {
            "split": split,
            "index": np.arange(len(labels)),
            "label": labels,
            "pred": preds,
            "probs": list(probs),
        }
    )
    if shift is not None:
        frame["feature_shift"] = shift
    return frame


def _frame(rng, n=200, forget=0.0, ood_acc=0.6, shift_scale=1.0):
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.8
    test = _rows("test", y, np.where(right, y, 1 - y), shift=rng.gamma(2.0, shift_scale, n))
    yo = rng.integers(0, 2, n)
    ood = _rows(
        "ood:a",
        yo,
        np.where(rng.random(n) < ood_acc, yo, 1 - yo),
        shift=rng.gamma(2.0, 2 * shift_scale, n),
    )
    yr = rng.integers(0, 2, n)
    before_right = rng.random(n) < 0.9
    after_right = before_right & (rng.random(n) >= forget)
    before = _rows("reference-before:r", yr, np.where(before_right, yr, 1 - yr))
    after = _rows("reference:r", yr, np.where(after_right, yr, 1 - yr))
    return pd.concat([test, ood, before, after], ignore_index=True)


def _point(frame, split, column):
    return frame[frame["split"] == split][column].mean()


def test_distortion_intervals_cover_the_estimate_and_shrink_with_examples():
    rng = np.random.default_rng(0)
    frame = _frame(rng)
    out = _intervals("distortion", Outputs({0: frame}), DISTORTION)
    lo, hi, _ = out["distortion_id"]
    assert lo < _point(frame, "test", "feature_shift") < hi
    ratio = _point(frame, "ood:a", "feature_shift") / _point(frame, "test", "feature_shift")
    lo_r, hi_r, method = out["distortion_ood_ratio"]
    assert lo_r < ratio < hi_r and "stratified" in method
    big = _intervals("distortion", Outputs({0: _frame(rng, n=2000)}), DISTORTION)
    assert big["distortion_id"][1] - big["distortion_id"][0] < (hi - lo) / 2


def test_forgetting_interval_is_zero_without_change_and_negative_with_forgetting():
    rng = np.random.default_rng(1)
    same = _intervals("forgetting", Outputs({0: _frame(rng, forget=0.0)}), FORGETTING)
    assert same["forgetting"][:2] == (0.0, 0.0)  # paired: identical predictions, no noise
    base = _frame(np.random.default_rng(3), forget=0.3)
    frames = {0: base, 1: base.copy()}  # two seeds, the same examples
    ref = frames[1]["split"] == "reference:r"
    flip = np.random.default_rng(4).random(ref.sum()) < 0.1
    frames[1].loc[ref, "pred"] = np.where(flip, 1 - base.loc[ref, "pred"], base.loc[ref, "pred"])
    lost = _intervals("forgetting", Outputs(frames), FORGETTING * 2)
    lo, hi, method = lost["forgetting"]
    assert hi < 0 and "paired" in method

    def acc(f, split):
        rows = f[f["split"] == split]
        return (rows["pred"] == rows["label"]).mean()

    deltas = [acc(f, "reference:r") - acc(f, "reference-before:r") for f in frames.values()]
    assert lo < np.mean(deltas) < hi


def test_effective_robustness_interval_needs_the_trend_and_covers_the_estimate():
    from scipy.stats import norm

    rng = np.random.default_rng(2)
    frame = _frame(rng, ood_acc=0.7)
    assert _intervals("effective_robustness", Outputs({0: frame}), [{}]) == {}  # no trend
    fits = {"ood:a": {"slope": 1.0, "intercept": -0.5}}
    trend = {"baseline": "LP", "points": [], "fits": fits}
    out = _intervals("effective_robustness", Outputs({0: frame}), [{"trend": trend}])
    acc = {
        s: (frame[frame.split == s].pred == frame[frame.split == s].label).mean()
        for s in ("test", "ood:a")
    }
    er = acc["ood:a"] - norm.cdf(norm.ppf(acc["test"]) - 0.5)
    lo, hi, _ = out["effective_robustness"]
    assert lo < er < hi
    assert hi - lo < 0.25  # 200 examples a side


def test_msp_auroc_interval_covers_the_estimate():
    from safeadapt.metrics.detection import rank_auroc

    frame = _frame(np.random.default_rng(5))
    out = _intervals(
        "detection", Outputs({0: frame}), [{"fit_split": "val", "splits": {"ood:a": {}}}]
    )
    lo, hi, method = out["ood_auroc"]

    def msp(split):
        return np.stack(frame[frame.split == split].probs.to_numpy()).max(1)

    assert lo <= rank_auroc(msp("test"), msp("ood:a")) <= hi and "separately" in method


def test_sampled_accuracies_pool_seeds_in_a_wilson_interval():
    from safeadapt.metrics.intervals import wilson_interval

    results = [{"mean_accuracy": 0.5, "n": 40}, {"mean_accuracy": 0.75, "n": 40}]
    lo, hi, method = _intervals("corruption", Outputs({}), results)["corruption_accuracy"]
    assert (lo, hi) == wilson_interval(50, 80) and "pooled" in method
    attacked = {"method": "pgd", "space": "pixel", "steps": 1, "n": 0, "accuracy": {},
                "mean_accuracy": None}  # fmt: skip
    assert _intervals("adversarial", None, [attacked]) == {}


def test_group_intervals_cover_their_estimates_and_keep_cell_sizes():
    from safeadapt.metrics.groups import group_report
    from safeadapt.results.safety import dump_value

    rng = np.random.default_rng(6)
    n = 400
    y = rng.integers(0, 2, n)
    g = rng.choice(["red", "green"], n)
    right = rng.random(n) < np.where(g == "red", 0.9, 0.7)  # green is the worse group
    pred = np.where(right, y, 1 - y)
    frame = _rows("test", y, pred)
    frame["group"] = g
    report = group_report(y, pred, g)
    out = _intervals("groups", Outputs({0: frame}), [{"test": dump_value(report)}])
    for key, estimate in (
        ("worst_group_accuracy", report.worst_group_accuracy),
        ("group_gap", report.accuracy_gap),
        ("worst_cell_accuracy", report.worst_cell_accuracy),
        ("tpr_gap", report.tpr_gap),
    ):
        lo, hi, method = out[key]
        assert lo <= estimate <= hi and "cell" in method, key
    assert _intervals("groups", Outputs({0: frame.drop(columns="group")}), [{}]) == {}

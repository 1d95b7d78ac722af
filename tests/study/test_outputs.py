"""Intervals from per-example outputs (study/outputs.py) for the safety families that are not
plain accuracies: feature distortion, concept forgetting, effective robustness."""

import numpy as np
import pandas as pd

from safeadapt.study.outputs import Outputs, example_intervals


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
    out = example_intervals(Outputs({0: frame}), ["test", "ood:a"])
    lo, hi, _ = out["distortion_id"]
    assert lo < _point(frame, "test", "feature_shift") < hi
    ratio = _point(frame, "ood:a", "feature_shift") / _point(frame, "test", "feature_shift")
    lo_r, hi_r, method = out["distortion_ood_ratio"]
    assert lo_r < ratio < hi_r and "stratified" in method
    big = example_intervals(Outputs({0: _frame(rng, n=2000)}), ["test", "ood:a"])
    assert big["distortion_id"][1] - big["distortion_id"][0] < (hi - lo) / 2


def test_forgetting_interval_is_zero_without_change_and_negative_with_forgetting():
    rng = np.random.default_rng(1)
    same = example_intervals(Outputs({0: _frame(rng, forget=0.0)}), ["test"])
    assert same["forgetting"][:2] == (0.0, 0.0)  # paired: identical predictions, no noise
    base = _frame(np.random.default_rng(3), forget=0.3)
    frames = {0: base, 1: base.copy()}  # two seeds, the same examples
    ref = frames[1]["split"] == "reference:r"
    flip = np.random.default_rng(4).random(ref.sum()) < 0.1
    frames[1].loc[ref, "pred"] = np.where(flip, 1 - base.loc[ref, "pred"], base.loc[ref, "pred"])
    lost = example_intervals(Outputs(frames), ["test"])
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
    assert "effective_robustness" not in example_intervals(Outputs({0: frame}), ["test", "ood:a"])
    fits = {"ood:a": {"slope": 1.0, "intercept": -0.5}}
    out = example_intervals(Outputs({0: frame}), ["test", "ood:a"], fits)
    acc = {
        s: (frame[frame.split == s].pred == frame[frame.split == s].label).mean()
        for s in ("test", "ood:a")
    }
    er = acc["ood:a"] - norm.cdf(norm.ppf(acc["test"]) - 0.5)
    lo, hi, _ = out["effective_robustness"]
    assert lo < er < hi
    assert hi - lo < 0.25  # 200 examples a side

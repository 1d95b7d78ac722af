"""Can the label-free accuracy estimate be made right on rotated digits? (issue 27)

    .venv/bin/python bench/bench_atc_variants.py

The monitor's stream (c) model (LP on EfficientNet-Lite0 at 64 px, the built-in MNIST task with
half of each OOD source carved off as OOD validation, as a study does), windows of 100 inputs
of the OOD *test* part (rotated digits, scikit-learn's digits) and of ID test. Per estimator:
the bias (mean estimate - mean accuracy over the windows) and the mean absolute error per
window, beside the windows' sampling standard error. Estimators:

- ``atc``: what ``safeadapt monitor`` does -- ATC on the negative entropy of the
  temperature-scaled logits, its threshold fitted on the ID-validation sample;
- ``atc+corruptions (linear / probit)``: ATC's estimate mapped by a line fitted on synthetic
  shifts of ID validation (every image corruption of ``safeadapt.perturb`` at severities 1, 3,
  5; Deng & Zheng 2021's meta-set idea), in accuracy or probit space -- no shifted data needed;
- ``atc pooled with OOD-val``: one threshold fitted on ID validation and the study's OOD-val
  splits together -- needs labelled data of the shift (anticipated shifts only);
- ``atc nearest domain``: each input thresholded by the labelled domain (ID val or an OOD-val
  split) most of its 10 nearest neighbours in the adapted features come from -- same need.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

WINDOW, WINDOWS, REFERENCE = 100, 10, 1000


def main() -> dict:
    from scipy.stats import norm

    from safeadapt.backbones import load_backbone
    from safeadapt.data import Split, load_builtin_task
    from safeadapt.data.features import FeatureCache
    from safeadapt.metrics.calibration import fit_temperature
    from safeadapt.monitor import signals
    from safeadapt.monitor.reference import window_outputs
    from safeadapt.perturb.images import IMAGE_CORRUPTIONS
    from safeadapt.protocols import FitContext, make_protocol

    start = time.perf_counter()
    task = load_builtin_task("mnist").with_ood_val(0.5, seed=0)
    factory = lambda: load_backbone("efficientnet-lite0", image_size=64)  # noqa: E731
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = make_protocol("lp", {}).fit(FitContext(task, factory, 0, FeatureCache(tmp),
                                                       False)).model  # fmt: skip

    def outputs(split):
        _, feats, logits = window_outputs(model, None, split, same_backbone=True)
        return feats, logits, np.asarray(split.labels)

    val = outputs(task.val.sample(REFERENCE, 0))
    temperature = fit_temperature(val[1], torch.as_tensor(val[2]))

    def score(logits):
        return signals.negative_entropy(logits, temperature)

    def accuracy(out):
        return float((out[1].argmax(1).numpy() == out[2]).mean())

    def threshold(outs):
        scores = np.concatenate([score(o[1]) for o in outs])
        correct = np.concatenate([o[1].argmax(1).numpy() == o[2] for o in outs])
        return signals.atc_threshold(scores, float(correct.mean()))

    t_id = threshold([val])
    # synthetic shifts of ID validation: (accuracy, ATC estimate) points
    rng = np.random.default_rng(0)
    sample = task.val.sample(300, 1)
    points = [(accuracy(val), signals.atc_estimate(score(val[1]), t_id))]
    for kind in IMAGE_CORRUPTIONS.names():
        corrupt = IMAGE_CORRUPTIONS.get(kind)
        for severity in (1, 3, 5):
            images = np.stack([corrupt(x, severity, rng) for x in sample.inputs])
            out = outputs(Split(f"{kind}-{severity}", images, sample.labels))
            points.append((accuracy(out), signals.atc_estimate(score(out[1]), t_id)))
    pts = np.asarray(points)
    slope, intercept = np.polyfit(pts[:, 1], pts[:, 0], 1)

    def probit(p):
        return norm.ppf(np.clip(p, 1e-3, 1 - 1e-3))

    p_slope, p_intercept = np.polyfit(probit(pts[:, 1]), probit(pts[:, 0]), 1)
    domains = {"id": val, **{k: outputs(v.sample(REFERENCE, 0)) for k, v in task.ood_val.items()}}
    t_pooled = threshold(list(domains.values()))
    t_domain = [threshold([o]) for o in domains.values()]
    bank = torch.cat([o[0] for o in domains.values()]).float()
    owner = np.concatenate([[i] * len(o[2]) for i, o in enumerate(domains.values())])

    def nearest_domain(out) -> float:
        near = torch.cdist(out[0].float(), bank).topk(10, largest=False).indices.numpy()
        which = np.array([np.bincount(owner[n], minlength=len(domains)).argmax() for n in near])
        return float((score(out[1]) > np.asarray(t_domain)[which]).mean())

    estimators = {
        "atc": lambda out: signals.atc_estimate(score(out[1]), t_id),
        "atc+corruptions (linear)": lambda out: float(np.clip(
            intercept + slope * signals.atc_estimate(score(out[1]), t_id), 0, 1)),
        "atc+corruptions (probit)": lambda out: float(norm.cdf(
            p_intercept + p_slope * probit(signals.atc_estimate(score(out[1]), t_id)))),
        "atc pooled with OOD-val": lambda out: signals.atc_estimate(score(out[1]), t_pooled),
        "atc nearest domain": nearest_domain,
    }  # fmt: skip
    streams = {"rotated (OOD test)": task.ood["rotated"], "digits (OOD test)": task.ood["digits"],
               "ID test": task.test}  # fmt: skip
    result: dict = {"corruption_points": len(points), "streams": {}}
    for name, split in streams.items():
        wins = [outputs(split.subset(np.arange(i * WINDOW, (i + 1) * WINDOW), "w"))
                for i in range(min(WINDOWS, len(split.labels) // WINDOW))]  # fmt: skip
        acc = np.array([accuracy(w) for w in wins])
        row = {"windows": len(wins), "accuracy": float(acc.mean()),
               "sampling_se": float(np.sqrt(acc.mean() * (1 - acc.mean()) / WINDOW))}  # fmt: skip
        for est_name, est in estimators.items():
            e = np.array([est(w) for w in wins])
            row[est_name] = {"bias": float(e.mean() - acc.mean()),
                             "mae": float(np.abs(e - acc).mean())}  # fmt: skip
        result["streams"][name] = row
    result["seconds"] = time.perf_counter() - start
    print("| estimator | " + " | ".join(f"{s}: bias / MAE" for s in streams) + " |")
    print("|---|" + "---|" * len(streams))
    for est_name in estimators:
        cells = [f"{100 * r[est_name]['bias']:+.1f} / {100 * r[est_name]['mae']:.1f}"
                 for r in result["streams"].values()]  # fmt: skip
        print(f"| {est_name} | " + " | ".join(cells) + " |")
    print("| (window accuracy; sampling SE) | " + " | ".join(
        f"{r['accuracy']:.3f}; {100 * r['sampling_se']:.1f}" for r in result["streams"].values())
        + " |")  # fmt: skip
    print(json.dumps({"seconds": round(result["seconds"], 1)}))
    return result


if __name__ == "__main__":
    main()

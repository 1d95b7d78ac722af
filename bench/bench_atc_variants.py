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
  split) most of its 10 nearest neighbours in the adapted features come from -- same need;
- other per-input scores thresholded as ATC's on ID validation: the max confidence (ATC-MC),
  the energy of the logits, the kNN score of the adapted features (Sun et al. 2022), and the
  probability of being right from a logistic model of the three on ID validation (also its
  mean, as CBPE takes it); no shifted data needed;
- a second model from the reference alone: a 10-nearest-neighbour vote over the ID-val
  sample's adapted features and labels; the share of the window where it agrees with the head
  (``knn agreement``: Jiang et al. 2022's disagreement as error), and ID-val accuracy moved by
  the change of that share (``knn agreement, moved``);
- ``importance-weighted reference``: the reference's accuracy with each row weighted by
  p(window | x) / p(reference | x) from a logistic domain classifier on the adapted features
  (covariate-shift correction) -- no shifted labels needed;
- ``atc among Mahalanobis-unflagged``: inputs a Mahalanobis detector flags (5 % FPR on
  cross-fitted ID-validation scores) counted wrong, ATC on the rest, its threshold refitted on
  ID validation for the combined rule -- no shifted data needed.
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
    from safeadapt.metrics.detection import knn_score
    from safeadapt.monitor.reference import window_outputs
    from safeadapt.monitor.signals import stats as signals
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

    # other per-input scores, each thresholded ATC-style on ID validation (kNN: leave-one-out)
    val_acc = accuracy(val)
    bank_id = val[0].float()
    k_id = signals.knn_k(len(bank_id))

    def knn(out, loo=False):
        return knn_score(bank_id, out[0].float(), k_id, leave_one_out=loo)

    def features(out, loo=False):
        return np.stack([score(out[1]), signals.energy(out[1]), knn(out, loo)], 1)

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features(val, True))
    correct_model = LogisticRegression(C=1.0).fit(
        scaler.transform(features(val, True)), val[1].argmax(1).numpy() == val[2]
    )

    def p_correct(out, loo=False):
        return correct_model.predict_proba(scaler.transform(features(out, loo)))[:, 1]

    t_mc = signals.atc_threshold(signals.confidence(val[1], temperature), val_acc)
    t_en = signals.atc_threshold(signals.energy(val[1]), val_acc)
    t_knn = signals.atc_threshold(knn(val, True), val_acc)
    t_pc = signals.atc_threshold(p_correct(val, True), val_acc)
    # a second model from the reference alone: a k-nearest-neighbour vote over the ID-val
    # sample's adapted features and labels (leave-one-out on the sample itself)
    bank_n = torch.nn.functional.normalize(bank_id.double(), dim=1)

    def knn_pred(out, loo=False, k=10):
        d = torch.cdist(torch.nn.functional.normalize(out[0].double(), dim=1), bank_n)
        idx = d.topk(k + int(loo), largest=False).indices[:, int(loo) :].numpy()
        votes = val[2][idx]
        return np.array([np.bincount(v, minlength=10).argmax() for v in votes])

    def agree(out, loo=False):
        return knn_pred(out, loo) == out[1].argmax(1).numpy()

    agree_val = agree(val, True)

    # ATC among the inputs a Mahalanobis detector does not flag (flagged ones counted wrong):
    # the detector fitted on ID validation, its threshold at a 5 % FPR of 5-fold cross-fitted
    # scores there, ATC's threshold refitted on ID validation for the combined rule
    from safeadapt.safety.detection import fit_scorer

    fx, fy, fl = val[0].float(), val[2], val[1].float()
    head = (model.head.weight.detach().float(), model.head.bias.detach().float())
    folds = np.array_split(np.random.default_rng(0).permutation(len(fy)), 5)
    crossed = np.empty(len(fy))
    for held in folds:
        rest = np.setdiff1d(np.arange(len(fy)), held)
        maha_k = fit_scorer("mahalanobis", fx[rest], fy[rest], fl[rest], head)
        crossed[held] = maha_k(fx[held], fl[held])
    maha = fit_scorer("mahalanobis", fx, fy, fl, head)
    t_maha = float(np.quantile(crossed, 0.05))

    def kept_score(out, cross=None):
        flagged = (crossed if cross is not None else maha(out[0].float(), out[1])) < t_maha
        return np.where(flagged, -np.inf, score(out[1]))

    t_kept = signals.atc_threshold(kept_score(val, cross=True), val_acc)

    # importance weighting (covariate shift): a domain classifier between the reference's and
    # the window's adapted features gives each reference row the weight p(window | x) /
    # p(reference | x); the estimate is the reference's weighted accuracy
    ref_right = (val[1].argmax(1).numpy() == val[2]).astype(float)
    ref_x = val[0].float().numpy()

    def importance_weighted(out, c=1.0):
        x = np.concatenate([ref_x, out[0].float().numpy()])
        side = np.r_[np.zeros(len(ref_x)), np.ones(len(out[2]))]
        scaler_d = StandardScaler().fit(x)
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        clf.fit(scaler_d.transform(x), side)
        p = clf.predict_proba(scaler_d.transform(ref_x))[:, 1].clip(1e-6, 1 - 1e-6)
        w = p / (1 - p)
        return float((w * ref_right).sum() / w.sum())

    estimators = {
        "atc": lambda out: signals.atc_estimate(score(out[1]), t_id),
        "importance-weighted reference (C=1)": importance_weighted,
        "importance-weighted reference (C=0.01)": lambda out: importance_weighted(out, 0.01),
        "atc among Mahalanobis-unflagged": lambda out: signals.atc_estimate(
            kept_score(out), t_kept),
        "knn agreement": lambda out: float(agree(out).mean()),
        "knn agreement, moved": lambda out: float(np.clip(
            val_acc + agree(out).mean() - agree_val.mean(), 0, 1)),
        "atc max-confidence": lambda out: signals.atc_estimate(
            signals.confidence(out[1], temperature), t_mc),
        "atc energy": lambda out: signals.atc_estimate(signals.energy(out[1]), t_en),
        "atc knn": lambda out: signals.atc_estimate(knn(out), t_knn),
        "correctness model (mean)": lambda out: float(p_correct(out).mean()),
        "atc correctness model": lambda out: signals.atc_estimate(p_correct(out), t_pc),
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

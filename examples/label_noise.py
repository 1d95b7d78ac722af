"""What label noise costs, Sentiment140-style (Vargas et al. 2023), on the built-in data.

Train: movie snippets labelled by VADER's lexicon (``vader-autolabel``); test: human ratings.
Prints the shift check (inputs vs labels) and three linear probes scored on the human-labelled
test set: fitted on the automatic labels, on the automatic labels of the snippets that also have a
clear human rating, and on those human ratings (what relabelling would buy).

    .venv/bin/python examples/label_noise.py        # about 1 min on 2 CPU cores
"""

from __future__ import annotations

import numpy as np

from safeadapt.backbones import load_backbone
from safeadapt.data import load_builtin_task
from safeadapt.data.features import FeatureCache
from safeadapt.shift import shift_report
from safeadapt.shift.report import label_agreement


def main() -> None:
    task = load_builtin_task("vader-autolabel").subsample(max_train=2000, max_eval=1000)
    backbone, cache = load_backbone("minilm", max_length=64), FeatureCache()
    report = shift_report(backbone, {"auto": task.train, "human": task.test}, cache)
    c = report.comparisons["human"]
    print(
        f"inputs: MMD p {c.mmd.p_value:.3g}, domain AUROC {c.classifier.auroc:.3f} "
        f"-> shift {'detected' if c.shift_detected else 'not detected'}"
    )
    print(f"advice: {report.advice}")
    train = cache.get(backbone, task.train).features.numpy()
    test = cache.get(backbone, task.test).features.numpy()
    rating = np.asarray(task.train.groups).astype(str)
    clear = rating != "neutral"
    human = (rating == "positive").astype(np.int64)
    probes = {
        "automatic labels": (train, task.train.labels),
        "automatic labels, clear snippets": (train[clear], task.train.labels[clear]),
        "human labels, same snippets": (train[clear], human[clear]),
    }
    print(
        f"auto labels agree with a clear human rating on {np.mean(task.train.labels[clear] == human[clear]):.1%}"
    )
    for name, (x, y) in probes.items():
        acc = label_agreement(x, y, test, task.test.labels).transfer
        print(f"probe on {name:34s} ({len(y):4d} snippets): human-test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()

"""The classification metrics users ask for (macro-F1, balanced accuracy, AUROC, per-class
recall): registered, equal to scikit-learn's on the same predictions, and stored per split with
the class names when a study asks for them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from safeadapt.data.task import Split, Task
from safeadapt.evaluation import score
from safeadapt.metrics import METRICS


def _case(k: int, n: int = 300, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    # logits that are informative but wrong often enough for every metric to be non-trivial
    logits = torch.randn(n, k, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, k)
    return logits, labels


@pytest.mark.parametrize("k", [2, 4])
def test_each_metric_equals_scikit_learns(k):
    logits, labels = _case(k)
    y, pred = labels.numpy(), logits.argmax(1).numpy()
    probs = logits.double().softmax(1).numpy()
    assert METRICS.get("macro_f1")(logits, labels) == pytest.approx(
        skm.f1_score(y, pred, average="macro")
    )
    assert METRICS.get("balanced_accuracy")(logits, labels) == pytest.approx(
        skm.balanced_accuracy_score(y, pred)
    )
    expected_auc = (
        skm.roc_auc_score(y, probs[:, 1])
        if k == 2
        else skm.roc_auc_score(y, probs, multi_class="ovr", average="macro")
    )
    assert METRICS.get("auroc")(logits, labels) == pytest.approx(expected_auc)
    recall = METRICS.get("recall")(logits, labels)
    assert recall == pytest.approx(
        {str(c): r for c, r in enumerate(skm.recall_score(y, pred, average=None))}
    )
    # and the metrics are not all the same number in disguise
    assert METRICS.get("macro_f1")(logits, labels) != pytest.approx(
        METRICS.get("balanced_accuracy")(logits, labels), abs=1e-6
    )


def test_a_class_missing_from_a_split_is_handled_not_crashed():
    logits, labels = _case(3)
    keep = labels != 2  # class 2 has no examples here, but the model can still predict it
    logits, labels = logits[keep], labels[keep]
    recall = METRICS.get("recall")(logits, labels)
    assert set(recall) == {"0", "1"}  # undefined for the absent class: left out
    # macro-F1 counts the absent class (as a 0: the model predicted it, wrongly)
    y, pred = labels.numpy(), logits.argmax(1).numpy()
    assert (pred == 2).any()
    assert METRICS.get("macro_f1")(logits, labels) == pytest.approx(
        skm.f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    )
    auc = METRICS.get("auroc")(logits, labels)
    probs = logits.double().softmax(1).numpy()
    assert auc == pytest.approx(np.mean([skm.roc_auc_score(y == c, probs[:, c]) for c in (0, 1)]))
    # a split of one class: AUROC is undefined, said as NaN rather than a made-up number
    assert math.isnan(METRICS.get("auroc")(logits[labels == 0], labels[labels == 0]))


def test_a_study_split_stores_recall_under_each_class_name():
    logits, labels = _case(3, n=60)
    y = labels.numpy()
    split = Split("test", [f"x{i}" for i in range(len(y))], y)
    task = Task("t", "text", ["cat", "dog", "eel"], split, split, split, {})
    out = score({"test": logits}, task, ("accuracy", "recall", "macro_f1"))["test"]
    assert set(out) == {"accuracy", "macro_f1", "recall:cat", "recall:dog", "recall:eel"}
    pred = logits.argmax(1).numpy()
    assert out["recall:dog"] == pytest.approx(((pred == 1) & (y == 1)).sum() / (y == 1).sum())

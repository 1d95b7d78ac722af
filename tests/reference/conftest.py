"""Seeded random cases for the differential tests: logits of 2, 3 and 10 classes, with ties,
missing classes, perfect and all-wrong predictions."""

from __future__ import annotations

import numpy as np
import torch


def cases(seed: int = 0):
    """``(name, logits (N, K) float64 tensor, labels (N,) int64 tensor)`` for each shape."""
    rng = np.random.default_rng(seed)
    out = []
    for k, n in ((2, 20), (3, 157), (10, 400)):
        logits = rng.normal(0, 2, (n, k))
        labels = rng.integers(0, k, n)
        out.append((f"random-{k}", logits, labels))
        tied = np.round(logits, 0)  # many equal confidences
        out.append((f"ties-{k}", tied, labels))
        out.append((f"perfect-{k}", np.eye(k)[labels] * 5 + rng.normal(0, 0.1, (n, k)), labels))
        wrong = (labels + 1) % k
        out.append((f"all-wrong-{k}", np.eye(k)[wrong] * 5, labels))
    missing = rng.normal(0, 1, (60, 4))
    out.append(("missing-class", missing, rng.integers(0, 3, 60)))  # class 3 never a label
    return [(name, torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)) for name, x, y
            in out]  # fmt: skip

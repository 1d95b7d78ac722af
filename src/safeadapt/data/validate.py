"""Checks on data as it enters safeadapt. Each error names the split, the row and the fix."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from safeadapt.errors import DataError

if TYPE_CHECKING:
    from safeadapt.data.task import Split, Task


def validate_split(split: Split, modality: str, num_classes: int) -> None:
    n = len(split.labels)
    if n == 0:
        raise DataError(f"Split {split.name!r} is empty: give it at least one example.")
    if len(split.inputs) != n:
        raise DataError(
            f"Split {split.name!r} has {len(split.inputs)} inputs but {n} labels; "
            "they must have the same length."
        )
    labels = np.asarray(split.labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"Split {split.name!r}: labels must be a 1-D integer array of class indices; "
            f"got dtype {labels.dtype} and shape {labels.shape}."
        )
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(
            f"Split {split.name!r}, row {bad[0]}: label index {labels[bad[0]]} is outside the "
            f"task's {num_classes} classes."
        )
    if split.groups is not None and len(split.groups) != n:
        raise DataError(f"Split {split.name!r}: groups has {len(split.groups)} rows, expected {n}.")
    if modality == "text":
        _validate_texts(split)
    else:
        _validate_images(split)


def _validate_texts(split: Split) -> None:
    if isinstance(split.inputs, np.ndarray) and split.inputs.dtype.kind not in "OUS":
        raise DataError(
            f"Split {split.name!r}: a text task needs strings, got an array of {split.inputs.dtype}."
        )
    for i, text in enumerate(split.inputs):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            raise DataError(
                f"Split {split.name!r}, row {i}: text is missing (None/NaN). "
                "Drop or fill missing rows before building the task."
            )
        if not isinstance(text, str):
            raise DataError(
                f"Split {split.name!r}, row {i}: text must be str, got {type(text).__name__}."
            )
        if not text.strip():
            raise DataError(f"Split {split.name!r}, row {i}: text is empty.")


def _validate_images(split: Split) -> None:
    x = split.inputs
    if not isinstance(x, np.ndarray):
        raise DataError(
            f"Split {split.name!r}: images must be one numpy array (N, H, W) or (N, H, W, C); "
            f"got {type(x).__name__}."
        )
    ok_shape = x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3))
    if not ok_shape:
        raise DataError(
            f"Split {split.name!r}: images must have shape (N, H, W) or (N, H, W, C) with C in "
            f"{{1, 3}}; got {x.shape}."
        )
    if x.shape[1] < 8 or x.shape[2] < 8:
        raise DataError(f"Split {split.name!r}: images of {x.shape[1]}x{x.shape[2]} are too small.")
    if x.dtype != np.uint8:
        raise DataError(
            f"Split {split.name!r}: images must be uint8 in [0, 255]; got {x.dtype}. "
            "Convert with (x * 255).round().astype('uint8') if they are floats in [0, 1]."
        )


def validate_task_labels(task: Task) -> None:
    """Every evaluated label must be one the model could have learned from train."""
    seen = set(np.unique(task.train.labels).tolist())
    if len(seen) < 2:
        raise DataError(
            f"Task {task.name!r}: train has only {len(seen)} class; a classifier needs at least 2."
        )
    for name, split in task.splits().items():
        if name == "train":
            continue
        unseen = sorted(set(np.unique(split.labels).tolist()) - seen)
        if unseen:
            names = [task.label_names[i] for i in unseen]
            raise DataError(
                f"Task {task.name!r}: split {name!r} has labels {names} that never appear in "
                "train. Every split must share the train label set; drop those rows or add "
                "training examples for them."
            )

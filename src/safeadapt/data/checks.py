"""Checks on data as it enters safeadapt: a split's labels, lengths, texts and images, and a
task's label sets. Each error names the split, the row and the fix. ``Task`` runs them when it
is built (``safeadapt.data.task``), so downstream code can trust the data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from safeadapt.errors import DataError


def validate_split(split: Any, modality: str, num_classes: int) -> None:
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


def _validate_texts(split: Any) -> None:
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


def _validate_images(split: Any) -> None:
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


def validate_task_labels(task: Any) -> None:
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


# characters per text: a tokenizer reads the whole text before it truncates to max_length, so
# one huge cell would cost its whole size in time and memory at every pass
MAX_TEXT_CHARS = 1_000_000


def check_texts(texts: list, where: str) -> None:
    """Every text is a non-empty string of at most ``MAX_TEXT_CHARS`` characters; errors name
    the row as it is in the file (data row 1 is the first after a header), before any shuffling
    or holding out."""
    for i, text in enumerate(texts):
        row = f"{where}, data row {i + 1}"
        if text is None or (isinstance(text, float) and np.isnan(text)):
            raise DataError(f"{row}: text is missing (None/NaN); drop or fill that row.")
        if not isinstance(text, str):
            raise DataError(f"{row}: text must be a string, got {type(text).__name__} {text!r}.")
        if not text.strip():
            raise DataError(f"{row}: text is empty; drop or fill that row.")
        if len(text) > MAX_TEXT_CHARS:
            raise DataError(
                f"{row}: text has {len(text):,} characters, above the limit of "
                f"{MAX_TEXT_CHARS:,} (the model reads at most max_length tokens of it); cut it "
                "or drop that row."
            )


def clean_labels(labels: list, where: str) -> list:
    """Labels as scalars, string labels stripped of surrounding whitespace (``"pos "`` is
    ``"pos"``); lists and mappings, and a mix of numbers and strings, are one-line errors."""
    out, kinds = [], {}
    for i, value in enumerate(labels):
        if isinstance(value, list | tuple | dict | set | np.ndarray):
            raise DataError(
                f"{where}, data row {i + 1}: the label is a {type(value).__name__} ({value!r:.60}); "
                "each row needs one label, a string or an integer (multi-label data is not "
                "supported)."
            )
        if isinstance(value, str):
            value = value.strip()
            kinds.setdefault("string", (i, value))
        elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        ):
            if not (isinstance(value, float | np.floating) and np.isnan(value)):
                kinds.setdefault("number", (i, value))
        out.append(value)
    if len(kinds) == 2:
        (si, sv), (ni, nv) = kinds["string"], kinds["number"]
        raise DataError(
            f"{where}: labels mix strings and numbers ({sv!r} at data row {si + 1}, {nv!r} at "
            f"data row {ni + 1}); write every label the same way (e.g. all as strings)."
        )
    return out


def label_notes(label_names: tuple) -> tuple[str, ...]:
    """``labels:`` notes (validate prints them as warnings) for labels that differ only by case
    or inner whitespace: separate classes, probably by mistake."""
    groups: dict[str, list[str]] = {}
    for name in label_names:
        if isinstance(name, str):
            groups.setdefault(" ".join(name.lower().split()), []).append(name)
    return tuple(
        f"labels: {', '.join(repr(n) for n in names)} differ only by case or spacing and are "
        "separate classes; fix the data if they mean one class."
        for names in groups.values()
        if len(names) > 1
    )


def label_key(value: Any, split_name: str, row: int) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise DataError(f"Split {split_name!r}, row {row}: label is missing (None/NaN).")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def label_set(labels: list) -> tuple:
    keys = {label_key(v, "train", i) for i, v in enumerate(labels)}
    try:
        return tuple(sorted(keys))
    except TypeError:
        return tuple(sorted(keys, key=str))

"""Rows without a task: one source's inputs and named columns (``read_rows``), or one labelled
split whose labels are read by a task's class names (``load_split``) -- production inputs to
monitor, an OOD source added to a built-in task. Read and checked as a task's splits are
(``safeadapt.data.sources``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.data.checks import check_texts, clean_labels, label_key
from safeadapt.data.images import images_to_array
from safeadapt.data.sources import _class_names, _is_image_feature, _load_source
from safeadapt.data.task import Split
from safeadapt.errors import DataError


def read_rows(
    source: str,
    *,
    modality: str,
    input_column: str,
    columns: dict[str, str] | None = None,
    optional: tuple[str, ...] = (),
) -> tuple[Any, dict[str, list]]:
    """The inputs of one source (texts as a list, images as one ``(N, H, W, 3)`` array) and the
    ``columns`` (``{column: the option that named it}``) as lists -- a ``ClassLabel`` column, as
    in image folders, by class name -- with the same reading and checks as a task's splits, for
    data that comes without a task (production inputs to monitor). A column named in
    ``optional`` that the source lacks reads as all ``None``."""
    name = f"input {source}"
    ds = _load_source(source, name)
    if len(ds) == 0:
        raise DataError(f"{name} is empty.")
    wanted = {input_column: "--input-column", **(columns or {})}
    for column, option in wanted.items():
        if column not in ds.column_names and column not in optional:
            raise DataError(
                f"{name} has no column {column!r} (named by {option}); its columns are "
                f"{ds.column_names}."
            )
    if modality == "image" and _is_image_feature(ds, input_column):
        import datasets

        ds = ds.cast_column(input_column, datasets.Image(decode=False))
    extra = {}
    for column in columns or {}:
        if column not in ds.column_names:
            extra[column] = [None] * len(ds)
            continue
        values = list(ds[column])
        names = _class_names(ds, column)
        if names is not None:
            values = [names[v] if v is not None and v >= 0 else None for v in values]
        extra[column] = values
    inputs = ds[input_column]
    if modality == "image":
        root = Path(source).parent if Path(source).is_file() else None
        return images_to_array(list(inputs), name, None, root), extra
    inputs = list(inputs)
    check_texts(inputs, name)
    return inputs, extra


def load_split(
    source: str,
    name: str,
    *,
    modality: str,
    input_column: str,
    label_column: str,
    label_names: tuple[str, ...],
) -> Split:
    """One labelled split from a source, its labels read by the names of ``label_names`` (an
    OOD source added to a built-in task, the windows a monitor saw drift in)."""
    inputs, extra = read_rows(source, modality=modality, input_column=input_column,
                              columns={label_column: "label_column"})  # fmt: skip
    index = {str(n): i for i, n in enumerate(label_names)}
    labels = []
    for row, value in enumerate(clean_labels(extra[label_column], f"Split {name!r} ({source})")):
        key = label_key(value, name, row)
        if str(key) not in index:
            raise DataError(
                f"Split {name!r} ({source}), data row {row + 1}: label {value!r} is not one of "
                f"the task's classes {list(label_names)}."
            )
        labels.append(index[str(key)])
    return Split(name, inputs, np.asarray(labels, dtype=np.int64))

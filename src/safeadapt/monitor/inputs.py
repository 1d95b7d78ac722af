"""Production inputs for monitoring: read in the task's own forms (CSV / Parquet / JSON lines /
image folders / ``datasets`` folders, through ``safeadapt.data.sources.read_rows``), each row
keyed on its content, so that the same inputs never count twice."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.errors import DataError


@dataclass(frozen=True)
class Rows:
    """Rows to monitor: inputs (texts, or an image array), labels (-1: not come back), the
    time column's values (or None), and each row's content key."""

    inputs: Any
    labels: np.ndarray
    times: list | None
    keys: list[str]

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, index: np.ndarray) -> Rows:
        index = np.asarray(index, dtype=np.int64)
        inputs = (self.inputs[index] if isinstance(self.inputs, np.ndarray)
                  else [self.inputs[i] for i in index])  # fmt: skip
        times = None if self.times is None else [self.times[i] for i in index]
        return Rows(inputs, self.labels[index], times, [self.keys[i] for i in index])

    def extend(self, other: Rows) -> Rows:
        """These rows, then ``other``'s."""
        if isinstance(self.inputs, np.ndarray):
            if self.inputs.shape[1:] != other.inputs.shape[1:]:
                raise DataError(f"monitor: images of {self.inputs.shape[1:]} and "
                                f"{other.inputs.shape[1:]} cannot share a window.")  # fmt: skip
            inputs: Any = np.concatenate([self.inputs, other.inputs])
        else:
            inputs = list(self.inputs) + list(other.inputs)
        if (self.times is None) != (other.times is None):
            raise DataError("monitor: give times for every call or for none.")
        times = None if self.times is None else list(self.times) + list(other.times)
        return Rows(inputs, np.concatenate([self.labels, other.labels]), times,
                    self.keys + other.keys)  # fmt: skip


def rows_in_memory(inputs, modality: str, label_names: tuple[str, ...], labels=None, times=None):
    """Rows from a serving job's inputs: texts (non-empty strings) or a uint8 image array."""
    if modality == "image":
        inputs = np.asarray(inputs)
        if inputs.dtype != np.uint8 or inputs.ndim not in (3, 4) or len(inputs) == 0:
            raise DataError(
                "monitor: images must be one non-empty uint8 array (N, H, W) or (N, H, W, 3); "
                f"got {inputs.dtype} {inputs.shape}."
            )
    else:
        from safeadapt.data.checks import check_texts

        if isinstance(inputs, str | bytes):
            raise DataError(
                "monitor: observe() takes a list of texts; got one text (wrap it: [text])."
            )
        inputs = list(inputs)
        if not inputs:
            raise DataError("monitor: no inputs given.")
        check_texts(inputs, "monitor inputs")  # non-empty texts of a bounded size
    n = len(inputs)
    for name, values in (("labels", labels), ("times", times)):
        if values is not None and len(values) != n:
            raise DataError(f"monitor: {n} inputs but {len(values)} {name}.")
    encoded = (encode_labels(list(labels), label_names, "monitor labels") if labels is not None
               else np.full(n, -1, dtype=np.int64))  # fmt: skip
    times = None if times is None else list(times)
    keys = [row_key(inputs[i], times[i] if times else None) for i in range(n)]
    return Rows(inputs, encoded, times, keys)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())  # fmt: skip


def encode_labels(values: list, label_names: tuple[str, ...], where: str) -> np.ndarray:
    """Class indices of label values (by name, as the study's task named them); a missing label
    is -1 (it has not come back yet); a label outside the model's classes is an error."""
    index = {name: i for i, name in enumerate(label_names)}
    out = np.full(len(values), -1, dtype=np.int64)
    for row, value in enumerate(values):
        if _missing(value):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        name = str(value).strip()
        if name not in index:
            raise DataError(
                f"{where}, data row {row + 1}: label {value!r} is not one of the model's classes "
                f"{list(label_names)}; leave it empty if it has not come back."
            )
        out[row] = index[name]
    return out


def row_key(value: Any, time: Any) -> str:
    h = hashlib.sha256()
    if isinstance(value, np.ndarray):
        h.update(f"{value.shape}|{value.dtype}|".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    else:
        h.update(str(value).encode("utf-8"))
    h.update(f"|{time}".encode())
    return h.hexdigest()[:32]


def read_inputs(
    sources: list[str | Path],
    *,
    modality: str,
    input_column: str,
    label_names: tuple[str, ...],
    label_column: str | None = None,
    time_column: str | None = None,
) -> Rows:
    """Every row of ``sources``, in order (files in the order given, rows in file order)."""
    from safeadapt.data.rows import read_rows

    if not sources:
        raise DataError("monitor: give at least one input (a file or an image folder).")
    parts, found_labels = [], False
    unique: dict[str, str | Path] = {}
    for source in sources:  # a file given twice is one file: its rows count once
        unique.setdefault(str(Path(source).resolve()) if Path(source).exists() else str(source),
                          source)  # fmt: skip
    for source in unique.values():
        columns = {c: o for c, o in ((label_column, "--labels"), (time_column, "--time-column"))
                   if c}  # fmt: skip
        # labels come back for some inputs only: a file without the column has none yet
        inputs, extra = read_rows(str(source), modality=modality, input_column=input_column,
                                  columns=columns, optional=(label_column,))  # fmt: skip
        if label_column and any(v is not None for v in extra[label_column]):
            found_labels = True
        labels = (encode_labels(extra[label_column], label_names, f"input {source}")
                  if label_column else np.full(len(inputs), -1, dtype=np.int64))  # fmt: skip
        times = list(extra[time_column]) if time_column else None
        parts.append((inputs, labels, times))
    if label_column and not found_labels:
        raise DataError(
            f"monitor: no input has the label column {label_column!r} (--labels) or a label in "
            "it; name the column that holds the labels that came back, or leave --labels out."
        )
    if modality == "image":
        shapes = {p[0].shape[1:] for p in parts}
        if len(shapes) > 1:
            raise DataError(f"monitor: the inputs' images differ in size ({sorted(shapes)}).")
        inputs = np.concatenate([p[0] for p in parts])
    else:
        inputs = [text for p in parts for text in p[0]]
    labels = np.concatenate([p[1] for p in parts])
    times = [t for p in parts for t in p[2]] if time_column else None
    # keyed on the input and its time, not its label: a label that comes back later does not
    # make a counted input new (it stays in the window it was measured in)
    keys = [row_key(inputs[i], times[i] if times else None) for i in range(len(labels))]
    return Rows(inputs, labels, times, keys)


def time_order(times: list, column: str) -> np.ndarray:
    """A stable order of the rows by the instant each time names: numbers (e.g. epoch seconds),
    or ISO 8601 times (texts or the file's own datetime values), where ``...+01:00`` and
    ``...Z`` are ordered by the instant, not the text. A value that is neither, a mix of the two,
    or times with and without a UTC offset in one column, is an error naming the row."""
    keys, kinds, aware = [], set(), set()
    for row, value in enumerate(times):
        if _missing(value):
            raise DataError(f"monitor: time column {column!r} is empty at row {row + 1}.")
        if isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
            kinds.add("number")
            keys.append(float(value))
            continue
        instant = _datetime(value)
        if instant is None:
            raise DataError(
                f"monitor: time column {column!r}, row {row + 1}: {str(value)[:40]!r} is not a "
                "time; write times as ISO 8601 (2026-12-03T17:00:00+01:00) or numbers."
            )
        kinds.add("time")
        aware.add(instant.tzinfo is not None)
        keys.append(instant.timestamp() if instant.tzinfo is not None else instant)
    if len(kinds) > 1:
        raise DataError(
            f"monitor: time column {column!r} mixes numbers and texts; write every time the "
            "same way (e.g. ISO 8601, 2026-12-03T17:00:00)."
        )
    if len(aware) > 1:
        raise DataError(
            f"monitor: time column {column!r} mixes times with a UTC offset and times without "
            "one, which cannot be ordered; give every time its offset (or none)."
        )
    return np.asarray(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def _datetime(value: Any):
    """``value`` as a ``datetime`` (ISO 8601 text, a datetime or numpy datetime64), or None."""
    from datetime import date, datetime

    if isinstance(value, datetime):
        return value
    if isinstance(value, np.datetime64):
        import pandas as pd

        return None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None

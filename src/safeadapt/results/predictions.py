"""A run's per-example outputs, typed: the store boundary of ``predictions.parquet``.

A run writes one frame: a row per (split, example) with ``split``, ``index`` (the example's
position in its split), ``label``, ``pred``, ``probs`` and optional columns (``source``,
``group``, ``text``, the safety families' per-example scores). :meth:`RunPredictions.from_frame`
reads it once into arrays per split, in example order; the intervals, the paired verdicts, the
disagreement examples and ``splits.csv`` read those arrays instead of filtering the frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FIXED = ("split", "index", "label", "pred", "probs")  # every frame's columns; the rest optional


@dataclass(frozen=True)
class SplitPredictions:
    """One run's outputs on one split, in example order: ``label`` and ``pred`` ``(N,)``,
    ``probs`` ``(N, K)``, and the optional per-example ``columns`` (name to ``(N,)``)."""

    label: np.ndarray
    pred: np.ndarray
    probs: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def correct(self) -> np.ndarray:
        """``(N,)`` booleans: the prediction is the label."""
        return self.pred == self.label


@dataclass(frozen=True)
class RunPredictions:
    """One run's outputs, split name to :class:`SplitPredictions`."""

    splits: Mapping[str, SplitPredictions]

    def __bool__(self) -> bool:
        return bool(self.splits)

    @classmethod
    def from_frame(cls, frame: Any) -> RunPredictions:
        """Read a run's predictions frame (as stored in its ``predictions.parquet``)."""
        missing = [c for c in FIXED if c not in frame.columns]
        if missing:
            raise ValueError(f"a predictions frame lacks the columns {missing}")
        extra = [c for c in frame.columns if c not in FIXED]
        out = {}
        for name, rows in frame.groupby("split", sort=True):
            rows = rows.sort_values("index")
            col = {c: rows[c].to_numpy() for c in rows.columns}
            out[str(name)] = SplitPredictions(
                label=col.pop("label"),
                pred=col.pop("pred"),
                probs=np.stack(col.pop("probs")),
                columns={c: col[c] for c in extra},
            )
        return cls(out)

"""The labelled rows of the windows that raised an alert, kept in the monitor's folder
(``drifted/``) for the next study (``safeadapt.study.suggest``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def drifted_rows(out: Path) -> tuple[list[Path], int]:
    """The files the monitor kept for its alerted windows and their labelled rows."""
    kept = sorted((out / "drifted").glob("window-*.csv"))
    images = out / "drifted" / "images"
    if images.is_dir():
        return [images], sum(1 for p in images.rglob("*.png"))
    import pandas as pd

    return kept, sum(len(pd.read_csv(p)) for p in kept)


def keep_window(out: Path, index: int, rows, label_names: tuple[str, ...]) -> int:
    """The labelled rows of an alerted window, kept for ``suggest_study``; how many."""
    from safeadapt.files import write_atomic

    known = np.flatnonzero(np.asarray(rows.labels) >= 0)
    if len(known) == 0:
        return 0
    if isinstance(rows.inputs, np.ndarray):
        from PIL import Image

        for k in known:
            folder = out / "drifted" / "images" / label_names[rows.labels[k]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rows.inputs[k]).save(folder / f"w{index:05d}-{k:06d}.png")
        return len(known)
    import pandas as pd

    frame = pd.DataFrame({"text": [rows.inputs[k] for k in known],
                          "label": [label_names[rows.labels[k]] for k in known]})  # fmt: skip
    write_atomic(out / "drifted" / f"window-{index:05d}.csv", frame.to_csv(index=False))
    return len(known)

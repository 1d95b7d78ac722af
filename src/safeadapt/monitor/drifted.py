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
    return kept, sum(len(read_kept(p)) for p in kept)


def read_kept(path: Path):
    """A kept window's rows (a CSV the monitor wrote and reads back): one that does not read
    as a table is a ``DataError`` naming it (exit 2), never a pandas error."""
    import pandas as pd

    from safeadapt.errors import DataError

    try:
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' parser errors included
        raise DataError(
            f"monitor: {path} is not a table the monitor wrote ({type(err).__name__}"
            "); move it away and run monitor again."
        ) from None


def folder_name(label_names: tuple[str, ...], label: int) -> str:
    """The image folder of class ``label``: its name by the safe-name rule; the class index is
    added when two names would map to one folder (the rule folds the characters it replaces)."""
    from safeadapt.readback import safe_part

    parts = [safe_part(n, 100) for n in label_names]
    part = parts[label]
    return part if parts.count(part) == 1 else f"{part}-{label}"


def keep_window(
    out: Path, index: int, rows, label_names: tuple[str, ...],
    columns: tuple[str, str] = ("text", "label"),
) -> int:  # fmt: skip
    """The labelled rows of an alerted window, kept for ``suggest_study`` under the study's own
    ``(input, label)`` column names; how many."""
    from safeadapt.files import write_atomic

    known = np.flatnonzero(np.asarray(rows.labels) >= 0)
    if len(known) == 0:
        return 0
    if isinstance(rows.inputs, np.ndarray):
        from PIL import Image

        from safeadapt.readback import inside

        for k in known:
            # a label name comes from the export's files: never a path of its own
            part = folder_name(label_names, int(rows.labels[k]))
            folder = inside(out, out / "drifted" / "images" / part)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rows.inputs[k]).save(folder / f"w{index:05d}-{k:06d}.png")
        return len(known)
    import pandas as pd

    frame = pd.DataFrame({columns[0]: [rows.inputs[k] for k in known],
                          columns[1]: [label_names[rows.labels[k]] for k in known]})  # fmt: skip
    write_atomic(out / "drifted" / f"window-{index:05d}.csv", frame.to_csv(index=False))
    return len(known)

"""What ``safeadapt curate`` reads and writes: group shares as the command line spells them, an
output file that is never one of the study's inputs (the original is kept) nor an existing
file unless forced, and the curated split as a CSV (texts) or an ``.npz`` (images)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from safeadapt.data.task import Split
from safeadapt.errors import InvalidConfig


def parse_group_shares(items: Sequence[str] | None) -> dict[str, float] | None:
    """``["red=0.7", "green=0.3"]`` -> ``{"red": 0.7, "green": 0.3}`` (None for none)."""
    if not items:
        return None
    shares = {}
    for item in items:
        if "=" not in item:
            raise InvalidConfig(f"--group-share takes group=share; got {item!r}.")
        g, v = item.split("=", 1)
        try:
            shares[g] = float(v)
        except ValueError:
            raise InvalidConfig(
                f"--group-share {item!r}: the share must be a number, e.g. {g}=0.5."
            ) from None
    return shares


def check_curate_out(target: Path, sources: Sequence[str | None], force: bool) -> None:
    """``curate --out``: never one of ``sources`` (the study's data files: the original is
    kept), never a folder, and an existing file only with ``force``."""
    if target.is_dir():
        raise InvalidConfig(f"curate: --out {target} is a folder; give a file name.")
    for source in sources:
        if source and Path(source).exists() and Path(source).resolve() == target.resolve():
            raise InvalidConfig(
                f"curate: --out {target} is the study's data ({source}); the original is "
                "kept, so give a new file name."
            )
    if target.exists() and not force:
        raise InvalidConfig(f"curate: --out {target} exists; give a new file name or pass --force.")


def curated_path(out: Path, modality: str) -> Path:
    """Where the curated split goes: ``out`` for texts, ``out`` with ``.npz`` for images."""
    return out if modality == "text" else out.with_suffix(".npz")


def write_curated(curated: Split, label_names: Sequence[str], modality: str, out: Path) -> Path:
    """The curated split as a CSV (text, label by name, group) or ``.npz`` (images, labels,
    groups); the path written."""
    path = curated_path(out, modality)
    path.parent.mkdir(parents=True, exist_ok=True)
    if modality == "text":
        import pandas as pd

        pd.DataFrame(
            {
                "text": list(curated.inputs),
                "label": [label_names[i] for i in curated.labels],
                "group": curated.groups,
            }
        ).to_csv(path, index=False)
    else:
        np.savez_compressed(
            path,
            images=curated.inputs,
            labels=curated.labels,
            groups=np.asarray(curated.groups).astype(str),
        )
    return path

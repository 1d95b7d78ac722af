"""Folders written by ``datasets``' ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``) as
study sources: ``<folder>``, ``<folder>:<split>``, or the same after ``hub:``."""

from __future__ import annotations

from pathlib import Path

from safeadapt.errors import DataError

# a study role's split name in a DatasetDict, when the source names none
DEFAULT_DISK_SPLITS = {"train": ("train",), "test": ("test",), "val": ("validation", "val")}


def saved_folder(source: str) -> tuple[Path | None, str | None]:
    """``(folder, split)`` when ``source`` is a ``datasets`` ``save_to_disk`` folder -- written
    as ``<folder>``, ``<folder>:<split>``, or the same after ``hub:`` -- else ``(None, None)``."""
    body = source.removeprefix("hub:").partition("?")[0] if source.startswith("hub:") else source
    candidates = [(body, None)]
    if ":" in body:
        head, _, split = body.rpartition(":")
        candidates.append((head, split or None))
    for candidate, split in candidates:
        folder = Path(candidate)
        if folder.is_dir() and any(
            (folder / marker).is_file() for marker in ("dataset_dict.json", "state.json")
        ):
            return folder, split
    return None, None


def from_disk(folder: Path, split: str | None, split_name: str):
    """A split of a ``save_to_disk`` folder: a ``Dataset`` as it is; a ``DatasetDict``'s split
    named by ``split``, else the one named like the study's split (train, test, validation)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as err:  # damaged arrow files, a newer datasets' layout
        first = " ".join(str(err).split())[:200]
        raise DataError(
            f"Split {split_name!r}: {folder} is a `datasets` save_to_disk folder that could not "
            f"be read ({first})."
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        if split is not None:
            raise DataError(
                f"Split {split_name!r}: {folder} holds one dataset without splits; drop "
                f"':{split}' from the source."
            )
        return loaded
    names = list(loaded)
    wanted = [split] if split else DEFAULT_DISK_SPLITS.get(split_name, ())
    for name in wanted:
        if name in loaded:
            return loaded[name]
    asked = f"no split {split!r}" if split else f"no split named for {split_name!r}"
    raise DataError(
        f"Split {split_name!r}: {folder} has {asked}; its splits are {', '.join(names)}. Name "
        f"one as {folder}:<split>."
    )

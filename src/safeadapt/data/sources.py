"""Tasks from Hugging Face ``datasets`` sources: local CSV / JSON / parquet / imagefolder or a hub id.

Example::

    task = load_task(
        train="train.csv", test="test.csv", ood={"tweets": "tweets.csv"},
        text_column="review", label_column="stars",
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.data.task import Split, Task, stratified_holdout
from safeadapt.errors import DataError, InvalidConfig

_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def _load_source(source: str, split_name: str, hub_split: str | None = None):
    """A ``datasets.Dataset`` from a local file / folder or a hub id (``hub_source``).

    Local tables are read with pandas on every call, so their *content* decides what is loaded:
    Hugging Face's CSV builder reuses a cached copy keyed on the path and modification time, which
    serves stale rows after an edit that keeps the mtime (``touch -r``).
    """
    import datasets

    path = Path(source)
    if source.startswith("hub:"):
        import os

        ident, kwargs = hub_source(source, hub_split)
        try:
            return datasets.load_dataset(ident, **kwargs)
        except Exception as err:  # offline, unknown id, missing split
            offline = (
                os.environ.get("HF_HUB_OFFLINE") == "1"
                or os.environ.get("HF_DATASETS_OFFLINE") == "1"
            )
            hint = (
                " Offline mode is on (HF_HUB_OFFLINE=1): only datasets already in the Hugging "
                "Face cache load; download it once online, or export it to a local file."
                if offline
                else ""
            )
            first = (
                str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            )
            raise DataError(
                f"Split {split_name!r}: hub dataset {ident!r} could not be loaded ({first}).{hint}"
            ) from None
    if path.is_dir():
        # Images are stored by path and decoded on access, so their bytes are read fresh.
        try:
            return datasets.load_dataset(
                "imagefolder", data_dir=str(path), split="train", drop_labels=False
            )
        except Exception as err:  # empty folder, no images, unreadable files
            raise DataError(
                f"Source {source!r} for split {split_name!r} is a folder but not a readable image "
                f"folder (<class>/<image> files): {str(err).splitlines()[0][:200]}"
            ) from None
    if not path.is_file():
        raise DataError(
            f"Source for split {split_name!r} not found: {source!r}. Give a CSV / JSON / parquet "
            "file, an image folder, or 'hub:<dataset id>[:split][?config=...&revision=...]'."
        )
    builder = _BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(
            f"Source {source!r} for split {split_name!r}: unsupported extension {path.suffix!r}; "
            f"use one of {sorted(_BUILDERS)} or an image folder."
        )
    frame = _read_table(path, builder, split_name)
    return datasets.Dataset.from_pandas(frame, preserve_index=False)


HUB_OPTIONS = ("config", "revision")


def hub_source(source: str, default_split: str | None = None) -> tuple[str, dict[str, Any]]:
    """``hub:<id>[:<split>][?config=<name>&revision=<commit or tag>]`` -> the dataset id and the
    keyword arguments of ``datasets.load_dataset`` (``name``, ``split``, ``revision``).

    Example: ``hub:nyu-mll/glue:validation?config=sst2&revision=bcdcba7`` (pin a revision for a
    result that does not move under you). Remote code is never run.
    """
    from urllib.parse import parse_qsl

    body, _, query = source.removeprefix("hub:").partition("?")
    ident, _, split = body.partition(":")
    if not ident:
        raise InvalidConfig(f"hub source {source!r} names no dataset: write hub:<owner>/<name>.")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    unknown = sorted(set(options) - set(HUB_OPTIONS))
    if unknown:
        raise InvalidConfig(
            f"hub source {source!r}: unknown option {unknown[0]!r}; known: {', '.join(HUB_OPTIONS)}."
        )
    kwargs: dict[str, Any] = {"split": split or default_split or "train"}
    if options.get("config"):
        kwargs["name"] = options["config"]
    if options.get("revision"):
        kwargs["revision"] = options["revision"]
    return ident, kwargs


def _read_table(path: Path, builder: str, split_name: str):
    """A pandas frame of a local CSV / TSV / JSON(L) / parquet file, with one-line errors."""
    import pandas as pd

    where = f"Split {split_name!r} ({path})"
    try:
        if builder == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            return pd.read_csv(path, sep=sep, encoding="utf-8")
        if builder == "json":
            lines = path.suffix.lower() == ".jsonl" or _looks_like_jsonl(path)
            return pd.read_json(path, lines=lines, encoding="utf-8")
        return pd.read_parquet(path)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{where} is not UTF-8 text ({err.reason} at byte {err.start}); re-save it as UTF-8."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{where} is empty: give it a header row and at least one example."
        ) from None
    except pd.errors.ParserError as err:
        first = str(err).strip().splitlines()[-1]
        raise DataError(
            f"{where} could not be parsed as {builder.upper()} ({first}); check the delimiter "
            "(',' for .csv, tab for .tsv) and that every row has the header's number of fields."
        ) from None
    except (ValueError, OSError) as err:
        raise DataError(f"{where} could not be read as {builder}: {err}") from None


def _looks_like_jsonl(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1).lstrip()
    return head == b"{"


def _class_names(ds, column: str) -> list[str] | None:
    """The names of a ``ClassLabel`` column (image folders, many hub datasets), else ``None``."""
    import datasets

    feature = getattr(ds, "features", {}).get(column)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return None


def _column(ds, column: str, split_name: str, role: str):
    if column not in ds.column_names:
        raise DataError(
            f"Split {split_name!r} has no {role} column {column!r}; its columns are "
            f"{ds.column_names}. Set {role}_column to one of them."
        )
    return ds[column]


def _images_to_array(
    images: list, split_name: str, size: int | None, root: Path | None = None
) -> np.ndarray:
    """Decoded images (PIL images, arrays, or paths -- relative paths from a table are resolved
    against the table's folder) as one ``(N, H, W, 3)`` uint8 array."""
    from PIL import Image, UnidentifiedImageError

    arrays = []
    for i, img in enumerate(images):
        if isinstance(img, str):
            path = Path(img) if Path(img).is_absolute() or root is None else root / img
            try:
                img = Image.open(path)
                img.load()
            except (OSError, UnidentifiedImageError) as err:
                raise DataError(
                    f"Split {split_name!r}, row {i}: image {img!r} could not be read ({err}); "
                    "paths in an image column are relative to the table's folder."
                ) from None
        elif img is None:
            raise DataError(f"Split {split_name!r}, row {i}: the image is missing.")
        elif not isinstance(img, Image.Image):
            img = Image.fromarray(np.asarray(img, dtype=np.uint8))
        img = img.convert("RGB")
        if size is not None:
            img = img.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(img))
        if arrays[-1].shape != arrays[0].shape:
            raise DataError(
                f"Split {split_name!r}, row {i}: image of shape {arrays[-1].shape} differs from "
                f"{arrays[0].shape}; pass image_size to resize all images to one size."
            )
    return np.stack(arrays)


def load_task(
    train: str,
    test: str,
    validation: str | None = None,
    ood: Mapping[str, str] | None = None,
    *,
    ood_val: Mapping[str, str] | None = None,
    text_column: str | None = "text",
    image_column: str | None = None,
    label_column: str = "label",
    group_column: str | None = None,
    val_fraction: float = 0.1,
    image_size: int | None = None,
    name: str | None = None,
    seed: int = 0,
) -> Task:
    """Build a :class:`Task` from data sources.

    Label values may be strings or integers (a ``ClassLabel`` column, as in image folders and many
    hub datasets, is read by class *name*); the label set is taken from train (sorted) and every
    other split must use only those labels. Without ``validation``, a stratified ``val_fraction``
    of train is held out (seeded, every class on both sides). ``ood_val`` gives an OOD source's
    validation part explicitly (else ``Task.with_ood_val`` divides it).
    """
    if not 0 < val_fraction < 1:
        raise InvalidConfig(f"'val_fraction' must be in (0, 1); got {val_fraction}.")
    modality = "image" if image_column else "text"
    input_column = image_column or text_column
    if input_column is None:
        raise InvalidConfig("Give text_column (text tasks) or image_column (image tasks).")
    sources = {"train": train, "test": test, **({"val": validation} if validation else {})}
    sources.update({f"ood:{k}": v for k, v in (ood or {}).items()})
    for k, v in (ood_val or {}).items():
        if k not in (ood or {}):
            raise InvalidConfig(
                f"'ood_val' names {k!r}, which is not an OOD source ({sorted(ood or {})}); "
                "an OOD-validation set belongs to one OOD source of the same name."
            )
        sources[f"ood-val:{k}"] = v

    raw: dict[str, tuple[Any, list, Any]] = {}
    for split_name, source in sources.items():
        ds = _load_source(source, split_name)
        if len(ds) == 0:
            raise DataError(f"Split {split_name!r} ({source}) is empty.")
        inputs = _column(ds, input_column, split_name, "image" if image_column else "text")
        labels = list(_column(ds, label_column, split_name, "label"))
        names = _class_names(ds, label_column)
        if names is not None:  # class indices are per source: map them through their names
            labels = [names[v] if v is not None and v >= 0 else None for v in labels]
        groups = _column(ds, group_column, split_name, "group") if group_column else None
        if modality == "image":
            root = Path(source).parent if Path(source).is_file() else None
            inputs = _images_to_array(list(inputs), split_name, image_size, root)
        else:
            inputs = list(inputs)
        raw[split_name] = (inputs, labels, groups)

    label_names = _label_set(raw["train"][1])
    index = {v: i for i, v in enumerate(label_names)}
    splits = {}
    for split_name, (inputs, labels, groups) in raw.items():
        encoded = []
        for row, value in enumerate(labels):
            key = _label_key(value, split_name, row)
            if key not in index:
                raise DataError(
                    f"Split {split_name!r}, row {row}: label {value!r} is not in the train label "
                    f"set {list(label_names)}. Every split must use the train labels."
                )
            encoded.append(index[key])
        g = None if groups is None else np.asarray(groups, dtype=object)
        splits[split_name] = Split(split_name, inputs, np.asarray(encoded, dtype=np.int64), g)

    train_split = splits.pop("train")
    if "val" not in splits:
        held, kept = stratified_holdout(train_split.labels, val_fraction, seed, label_names)
        splits["val"] = train_split.subset(held, "val")
        train_split = train_split.subset(kept, "train")
    return Task(
        name=name or Path(train).stem,
        modality=modality,
        label_names=tuple(str(v) for v in label_names),
        train=train_split,
        val=splits.pop("val"),
        test=splits.pop("test"),
        ood={k.removeprefix("ood:"): v for k, v in splits.items() if k.startswith("ood:")},
        ood_val={
            k.removeprefix("ood-val:"): v for k, v in splits.items() if k.startswith("ood-val:")
        },
    )


def _label_key(value: Any, split_name: str, row: int) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise DataError(f"Split {split_name!r}, row {row}: label is missing (None/NaN).")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_set(labels: list) -> tuple:
    keys = {_label_key(v, "train", i) for i, v in enumerate(labels)}
    try:
        return tuple(sorted(keys))
    except TypeError:
        return tuple(sorted(keys, key=str))

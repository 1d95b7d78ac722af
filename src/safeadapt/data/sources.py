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

from safeadapt.data.checks import check_texts, clean_labels, label_key, label_notes, label_set
from safeadapt.data.disk import from_disk, saved_folder
from safeadapt.data.images import images_to_array
from safeadapt.data.task import Split, Task, stratified_holdout
from safeadapt.errors import DataError, InvalidConfig
from safeadapt.paths import home

_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


TABLE_SUFFIXES = tuple(_BUILDERS)


def _load_source(source: str, split_name: str, hub_split: str | None = None):
    """A ``datasets.Dataset`` from a local file / folder or a hub id (``hub_source``).

    Local tables are read with pandas on every call, so their *content* decides what is loaded:
    Hugging Face's CSV builder reuses a cached copy keyed on the path and modification time, which
    serves stale rows after an edit that keeps the mtime (``touch -r``).
    """
    import datasets

    folder, disk_split = saved_folder(source)
    if folder is not None:  # a `datasets` save_to_disk folder, by path or as hub:<folder>
        return from_disk(folder, disk_split, split_name)
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
            about_split = "split" in str(err).lower()  # the dataset loaded; its split did not
            hint = (
                " Offline mode is on (HF_HUB_OFFLINE=1): only datasets already in the Hugging "
                "Face cache load; download it once online, or export it to a local file."
                if offline and not about_split
                else ""
            )
            first = (
                str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            )
            raise DataError(
                f"Split {split_name!r}: hub dataset {ident!r} could not be loaded ({first}).{hint}"
            ) from None
    if path.is_dir():
        _check_regular_files(path, split_name)
        tables = sorted(p.name for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
        if tables and not any(p.is_dir() for p in path.iterdir()):
            raise DataError(
                f"Source {source!r} for split {split_name!r} is a folder of table files "
                f"({', '.join(tables[:3])}{', ...' if len(tables) > 3 else ''}), not an image "
                "folder; give one file per split (e.g. train: "
                f"{str(path / tables[0])!r}), or join them into one file first."
            )
        # Images are stored by path and decoded on access, so their bytes are read fresh.
        try:
            return datasets.load_dataset(
                "imagefolder", data_dir=str(path), split="train", drop_labels=False,
                cache_dir=str(home() / "datasets"),  # safeadapt's home, not ~/.cache/huggingface
            )  # fmt: skip
        except Exception as err:  # empty folder, no images, unreadable files
            raise DataError(
                f"Source {source!r} for split {split_name!r} is a folder but not a readable image "
                f"folder (<class>/<image> files): {str(err).splitlines()[0][:200]}"
            ) from None
    if path.exists() and not path.is_file():
        raise DataError(
            f"Source {source!r} for split {split_name!r} is not a regular file (a pipe, socket "
            "or device would never end or never answer); give a file or an image folder."
        )
    if not path.is_file():
        raise DataError(
            f"Source for split {split_name!r} not found: {source!r}. Give a CSV / JSON / parquet "
            "file, an image folder, a datasets save_to_disk folder ([:split]), or "
            "'hub:<dataset id>[:split][?config=...&revision=...]'."
        )
    builder = _BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(
            f"Source {source!r} for split {split_name!r}: unsupported extension {path.suffix!r}; "
            f"use one of {sorted(_BUILDERS)} or an image folder."
        )
    frame = _read_table(path, builder, split_name)
    try:
        return datasets.Dataset.from_pandas(frame, preserve_index=False)
    except Exception as err:  # pyarrow cannot type a column (lists beside scalars, ...)
        first = " ".join(str(err).split())[:200]
        raise DataError(
            f"Split {split_name!r} ({path}): a column holds values of different kinds ({first}); "
            "write every value of a column the same way."
        ) from None


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


def _check_regular_files(folder: Path, split_name: str) -> None:
    """Every entry of an image folder must be a regular file or a folder: reading a FIFO or a
    device never ends."""
    import os

    for root, _dirs, files in os.walk(folder):
        for name in files:
            file = Path(root) / name
            if not file.is_file():
                raise DataError(
                    f"Split {split_name!r}: {file} is not a regular file (a pipe, socket or "
                    "device); remove it from the image folder."
                )


def _check_header(path: Path, sep: str, where: str) -> None:
    """A CSV header may not name a column twice (pandas would read the first as ``label`` and
    the second as ``label.1``, and the study would silently use the first)."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f, delimiter=sep), [])
    names = [h.strip() for h in header]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(
            f"{where}: the header names column {twice[0]!r} twice; rename or drop one, so that "
            "it is clear which one to use."
        )


def _read_table(path: Path, builder: str, split_name: str):
    """A pandas frame of a local CSV / TSV / JSON(L) / parquet file, with one-line errors."""
    import pandas as pd

    where = f"Split {split_name!r} ({path})"
    try:
        if builder == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            _check_header(path, sep, where)
            frame = pd.read_csv(path, sep=sep, encoding="utf-8")
        elif builder == "json":
            lines = path.suffix.lower() == ".jsonl" or _looks_like_jsonl(path)
            frame = pd.read_json(path, lines=lines, encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
    except DataError:
        raise
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
        first = " ".join(str(err).split())[:200]
        raise DataError(f"{where} could not be read as {builder}: {first}") from None
    columns = [str(c) for c in frame.columns]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise DataError(f"{where}: column {twice[0]!r} appears twice; rename or drop one.")
    for column in frame.columns:
        if frame[column].dtype == object:
            _one_kind(list(frame[column]), f"{where}: column {str(column)!r}")
    return frame


def _one_kind(values: list, where: str) -> None:
    """A column may not mix strings and numbers (JSON ``1`` beside ``"pos"``): they would become
    different classes, or fail deep inside Arrow."""
    first: dict[str, tuple[int, Any]] = {}
    for i, v in enumerate(values):
        if isinstance(v, str):
            first.setdefault("string", (i, v))
        elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
            if not (isinstance(v, float | np.floating) and np.isnan(v)):
                first.setdefault("number", (i, v))
        if len(first) == 2:
            (si, sv), (ni, nv) = first["string"], first["number"]
            raise DataError(
                f"{where} mixes strings and numbers ({sv!r:.40} at data row {si + 1}, {nv!r} at "
                f"data row {ni + 1}); write every value the same way (e.g. labels all as strings)."
            )


def _looks_like_jsonl(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1).lstrip()
    return head == b"{"


def _is_image_feature(ds, column: str) -> bool:
    import datasets

    return isinstance(getattr(ds, "features", {}).get(column), datasets.Image)


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


def _row_sources(source: str, images: list | None, n: int = 0) -> np.ndarray:
    """Where each row came from: an image's own file path where it has one, else
    ``<source>:<row>`` (the 0-based data row of the file or dataset split)."""
    if images is None:
        return np.asarray([f"{source}:{i}" for i in range(n)], dtype=object)
    out = []
    for i, x in enumerate(images):
        path = x.get("path") if isinstance(x, dict) else x if isinstance(x, str) else None
        out.append(str(path) if path else f"{source}:{i}")
    return np.asarray(out, dtype=object)


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

    raw: dict[str, tuple[Any, list, Any, np.ndarray]] = {}
    for split_name, source in sources.items():
        ds = _load_source(source, split_name)
        if len(ds) == 0:
            raise DataError(f"Split {split_name!r} ({source}) is empty.")
        if image_column and _is_image_feature(ds, input_column):
            import datasets

            # decoded by images_to_array (bit depth, bad files named) rather than by datasets
            ds = ds.cast_column(input_column, datasets.Image(decode=False))
        inputs = _column(ds, input_column, split_name, "image" if image_column else "text")
        labels = list(_column(ds, label_column, split_name, "label"))
        names = _class_names(ds, label_column)
        if names is not None:  # class indices are per source: map them through their names
            labels = [names[v] if v is not None and v >= 0 else None for v in labels]
        labels = clean_labels(labels, f"Split {split_name!r} ({source})")
        groups = _column(ds, group_column, split_name, "group") if group_column else None
        if modality == "image":
            root = Path(source).parent if Path(source).is_file() else None
            inputs = list(inputs)
            origins = _row_sources(source, inputs)
            inputs = images_to_array(inputs, split_name, image_size, root)
        else:
            inputs = list(inputs)
            origins = _row_sources(source, None, len(inputs))
            check_texts(inputs, f"Split {split_name!r} ({source})")
        raw[split_name] = (inputs, labels, groups, origins)

    label_names = label_set(raw["train"][1])
    index = {v: i for i, v in enumerate(label_names)}
    splits = {}
    for split_name, (inputs, labels, groups, origins) in raw.items():
        encoded = []
        for row, value in enumerate(labels):
            key = label_key(value, split_name, row)
            if key not in index:
                raise DataError(
                    f"Split {split_name!r}, row {row}: label {value!r} is not in the train label "
                    f"set {list(label_names)}. Every split must use the train labels."
                )
            encoded.append(index[key])
        g = None if groups is None else np.asarray(groups, dtype=object)
        splits[split_name] = Split(split_name, inputs, np.asarray(encoded, dtype=np.int64), g,
                                   origins)  # fmt: skip

    train_split = splits.pop("train")
    if "val" not in splits:
        held, kept = stratified_holdout(train_split.labels, val_fraction, seed, label_names)
        splits["val"] = train_split.subset(held, "val")
        train_split = train_split.subset(kept, "train")
    return Task(
        notes=label_notes(label_names),
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

"""Re-adapt in small steps: the study to run next, with the inputs a monitor saw drift in.

``suggest_study(monitor, result, path)`` takes the study the export came from (its settings,
stored in the export as ``monitor/study.json``) and the labelled rows of every window that
raised an alert. With at least ``2 * MIN_LABELLED`` of them, a seeded half becomes extra
training data (``task.extra_train``: the next model learns from what now arrives) and the other
half an OOD source named ``monitored``; with fewer, all of them go to the OOD source. The study
divides that source into an OOD-validation part, on which the next verdict is chosen, and an
OOD-test part, on which it is reported (``task.ood_val_fraction``); no row is in two of the
three. Local paths become absolute (the export remembers the folder the study was run from);
the output folder and the name get a ``-monitored`` suffix, so the original study's results
stay as they were.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.errors import DataError, InvalidConfig

STUDY = "study.json"
MIN_LABELLED = 20  # the fewest labelled drifted rows worth choosing on (half are OOD-val)
SOURCE_KEYS = ("train", "test", "validation")


def study_record(raw: dict[str, Any], cwd: str) -> str:
    """What the export stores: the study's settings and the folder its paths are relative to."""
    return json.dumps({"study": raw, "cwd": cwd}, indent=1, default=str)


def _absolute(source: Any, cwd: Path) -> Any:
    """A local source relative to the study's folder made absolute (``folder:split`` too);
    hub sources and absolute paths as they are."""
    if not isinstance(source, str) or source.startswith("hub:") or Path(source).is_absolute():
        return source
    return str(cwd / source)


def drifted_rows(out: Path) -> tuple[list[Path], int]:
    """The files the monitor kept for its alerted windows and their labelled rows."""
    kept = sorted((out / "drifted").glob("window-*.csv"))
    images = out / "drifted" / "images"
    if images.is_dir():
        return [images], sum(1 for p in images.rglob("*.png"))
    import pandas as pd

    return kept, sum(len(pd.read_csv(p)) for p in kept)


def suggest_study(export_dir: Path, out: Path, path: Path, modality: str) -> Path:
    """Write the next study (see the module docstring); returns ``path``."""
    import yaml

    from safeadapt.files import write_atomic
    from safeadapt.monitor.reference import REFERENCE_DIR

    stored = Path(export_dir) / REFERENCE_DIR / STUDY
    if not stored.is_file():
        raise InvalidConfig(
            f"--suggest-study: {export_dir} carries no study settings ({REFERENCE_DIR}/{STUDY}); "
            "export again from the study's YAML file (safeadapt export STUDY --out DIR)."
        )
    record = json.loads(stored.read_text())
    raw, cwd = copy.deepcopy(record["study"]), Path(record["cwd"])
    files, labelled = drifted_rows(out)
    if labelled < MIN_LABELLED:
        raise DataError(
            f"--suggest-study: {labelled} labelled row(s) in the windows that raised an alert; "
            f"at least {MIN_LABELLED} are needed to choose on them. Give the labels that came "
            "back (--labels COLUMN) and run monitor again."
        )
    source, train_source, n_train = _divide(out, files, modality, labelled >= 2 * MIN_LABELLED)
    task = raw.setdefault("task", {})
    for key in SOURCE_KEYS:
        if key in task:
            task[key] = _absolute(task[key], cwd)
    for key in ("ood", "ood_val"):
        task[key] = {k: _absolute(v, cwd) for k, v in (task.get(key) or {}).items()}
    name = "monitored"
    while name in task["ood"]:
        name += "-new"
    task["ood"][name] = str(Path(source).resolve())
    if train_source is not None:
        task["extra_train"] = {**(task.get("extra_train") or {}), name: str(train_source.resolve())}
    if task.get("ood_val_fraction", 0.5) is None:
        task["ood_val_fraction"] = 0.5  # the verdict is chosen on the new data's OOD-val part
    old_output = Path(raw.get("output") or Path("safeadapt-out") / raw["name"])
    old_output = old_output if old_output.is_absolute() else cwd / old_output
    raw["output"] = str(old_output.parent / f"{old_output.name}-monitored")
    raw["name"] = f"{raw['name']}-monitored"[:64]
    used = (
        f"# {n_train} of them added to the training data (task.extra_train '{name}'), the other\n"
        f"# {labelled - n_train} as the OOD source '{name}'"
        if n_train
        else f"# added as the OOD source '{name}' (too few to give the training data a share)"
    )
    header = (
        f"# Suggested by safeadapt monitor: the study of {export_dir}, with {labelled} labelled\n"
        f"# row(s) of the windows that raised an alert:\n{used}\n"
        "# (divided into OOD-validation, on which the verdict is chosen, and OOD test).\n"
        "# Run it with: safeadapt run <this file>\n"
    )
    write_atomic(Path(path), header + yaml.safe_dump(raw, sort_keys=False))
    return Path(path)


def _divide(out: Path, files: list[Path], modality: str, split: bool):
    """The drifted rows as an OOD source and, when ``split``, a seeded disjoint half of them as
    extra training rows: ``(ood source, training source or None, training rows)``."""
    from safeadapt.files import write_atomic

    rng = np.random.default_rng(0)
    base = out / "drifted"
    if modality == "image":
        if not split:
            return files[0], None, 0
        images = sorted(files[0].rglob("*.png"))
        order = rng.permutation(len(images))
        train = {int(i) for i in order[: len(images) // 2]}
        for part in ("train", "ood"):
            shutil.rmtree(base / f"monitored-{part}", ignore_errors=True)
        for i, image in enumerate(images):
            part = "train" if i in train else "ood"
            target = base / f"monitored-{part}" / image.parent.name / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, target)
        return base / "monitored-ood", base / "monitored-train", len(train)
    import pandas as pd

    rows = pd.concat([pd.read_csv(p) for p in files], ignore_index=True)
    source = base / "monitored.csv"
    if not split:
        write_atomic(source, rows.to_csv(index=False))
        return source, None, 0
    order = rng.permutation(len(rows))
    half = len(rows) // 2
    train_source = base / "monitored-train.csv"
    write_atomic(train_source, rows.iloc[np.sort(order[:half])].to_csv(index=False))
    write_atomic(source, rows.iloc[np.sort(order[half:])].to_csv(index=False))
    return source, train_source, half


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

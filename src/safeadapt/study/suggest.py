"""Re-adapt in small steps: the study to run next, with the inputs a monitor saw drift in.

``suggest_study(monitor, path)`` takes the study the export came from (its settings,
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

import dataclasses
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.monitor.drifted import drifted_rows
from safeadapt.study.config import StudyConfig
from safeadapt.study.specs import TaskSpec

if TYPE_CHECKING:
    from safeadapt.monitor.monitor import Monitor

STUDY = "study.json"
MIN_LABELLED = 20  # the fewest labelled drifted rows worth choosing on (half are OOD-val)
SOURCE_KEYS = ("train", "test", "validation")
EDITED = (*SOURCE_KEYS, "ood", "ood_val", "extra_train", "ood_val_fraction")  # task fields set here


def study_record(raw: dict[str, Any], cwd: str) -> str:
    """What the export stores: the study's settings and the folder its paths are relative to."""
    return json.dumps({"study": raw, "cwd": cwd}, indent=1, default=str)


def _absolute(source: Any, cwd: Path) -> Any:
    """A local source relative to the study's folder made absolute (``folder:split`` too);
    hub sources and absolute paths as they are."""
    if not isinstance(source, str) or source.startswith("hub:") or Path(source).is_absolute():
        return source
    return str(cwd / source)


def _with_monitored(task: TaskSpec, cwd: Path, source: Path, train_source: Path | None):
    """``task`` with its local sources made absolute, the drifted rows as the OOD source
    ``monitored`` (and, when given, as extra training rows of that name); ``(task, name)``."""
    ood = {k: _absolute(v, cwd) for k, v in task.ood.items()}
    name = "monitored"
    while name in ood:
        name += "-new"
    extra = {k: _absolute(v, cwd) for k, v in task.extra_train.items()}
    if train_source is not None:
        extra = {**extra, name: str(train_source.resolve())}
    sources = {key: _absolute(getattr(task, key), cwd) for key in SOURCE_KEYS}
    task = dataclasses.replace(
        task,
        **sources,
        ood={**ood, name: str(Path(source).resolve())},
        ood_val={k: _absolute(v, cwd) for k, v in task.ood_val.items()},
        extra_train=extra,
        # the verdict is chosen on the new data's OOD-val part
        ood_val_fraction=0.5 if task.ood_val_fraction is None else task.ood_val_fraction,
    )
    return task, name


def suggest_study(monitor: Monitor, path: str | Path) -> Path:
    """Write the next study (see the module docstring) for what ``monitor`` kept; returns
    ``path``."""
    export_dir, out, modality = monitor.export_dir, monitor.out, monitor.manifest.modality
    import yaml

    from safeadapt.files import write_atomic
    from safeadapt.monitor.reference import REFERENCE_DIR

    stored = Path(export_dir) / REFERENCE_DIR / STUDY
    if not stored.is_file():
        raise InvalidConfig(
            f"--suggest-study: {export_dir} carries no study settings ({REFERENCE_DIR}/{STUDY}); "
            "export again from the study's YAML file (safeadapt export STUDY --out DIR)."
        )
    from safeadapt.readback import read_object

    record = read_object(stored, "export the model again from the study's YAML file")
    raw, cwd = record.get("study"), record.get("cwd")
    if not isinstance(raw, dict) or not isinstance(cwd, str) or set(record) != {"study", "cwd"}:
        raise DataError(f"--suggest-study: {stored} must hold exactly 'study' (an object) and "
                        "'cwd' (a folder); export the model again from the study's YAML file.")  # fmt: skip
    cwd = Path(cwd)
    config = StudyConfig.from_dict(raw)  # the stored settings are checked before any edit
    files, labelled = drifted_rows(out)
    if labelled < MIN_LABELLED:
        raise DataError(
            f"--suggest-study: {labelled} labelled row(s) in the windows that raised an alert; "
            f"at least {MIN_LABELLED} are needed to choose on them. Give the labels that came "
            "back (--labels COLUMN) and run monitor again."
        )
    source, train_source, n_train = _divide(out, files, modality, labelled >= 2 * MIN_LABELLED)
    task, name = _with_monitored(config.task, cwd, source, train_source)
    old_output = config.output_dir if config.output_dir.is_absolute() else cwd / config.output_dir
    # the user's document as written, but for the task's sources, the name and the output folder
    edited = {f: getattr(task, f) for f in EDITED if getattr(task, f) != getattr(config.task, f)}
    raw = {
        **raw,
        "name": f"{config.name}-monitored"[:64],
        "output": str(old_output.parent / f"{old_output.name}-monitored"),
        "task": {**(raw.get("task") or {}), **edited},
    }
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
    text = header + yaml.safe_dump(raw, sort_keys=False)
    _check_suggestion(text, Path(path))
    write_atomic(Path(path), text)
    return Path(path)


def _check_suggestion(text: str, path: Path) -> None:
    """The suggested study is valid as written, with its data (what ``safeadapt validate``
    checks), before it is written: a suggestion that cannot run is an error here, not later."""
    import os
    import tempfile

    from safeadapt.errors import SafeAdaptError
    from safeadapt.study.config import load_study

    fd, tmp = tempfile.mkstemp(prefix=".suggested-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        config = load_study(tmp)
        config.task.load()
    except SafeAdaptError as err:
        raise DataError(f"--suggest-study: the suggested study would not run ({err}); it was "
                        "not written.") from None  # fmt: skip
    finally:
        Path(tmp).unlink(missing_ok=True)


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

    from safeadapt.monitor.drifted import read_kept

    rows = pd.concat([read_kept(p) for p in files], ignore_index=True)
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

"""Re-adapt in small steps: the study to run next, with the inputs a monitor saw drift in.

``suggest_study(monitor, result, path)`` takes the study the export came from (its settings,
stored in the export as ``monitor/study.json``), adds the labelled rows of every window that
raised an alert as an OOD source named ``monitored`` -- the study divides it into an
OOD-validation part, on which the next verdict is chosen, and an OOD-test part, on which it is
reported (``task.ood_val_fraction``) -- and writes the new study YAML. Local paths become
absolute (the export remembers the folder the study was run from); the output folder and the
name get a ``-monitored`` suffix, so the original study's results stay as they were.
"""

from __future__ import annotations

import copy
import json
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
    if modality == "image":
        source = files[0]
    else:
        import pandas as pd

        source = out / "drifted" / "monitored.csv"
        write_atomic(source, pd.concat([pd.read_csv(p) for p in files]).to_csv(index=False))
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
    if task.get("ood_val_fraction", 0.5) is None:
        task["ood_val_fraction"] = 0.5  # the verdict is chosen on the new data's OOD-val part
    old_output = Path(raw.get("output") or Path("safeadapt-out") / raw["name"])
    old_output = old_output if old_output.is_absolute() else cwd / old_output
    raw["output"] = str(old_output.parent / f"{old_output.name}-monitored")
    raw["name"] = f"{raw['name']}-monitored"[:64]
    header = (
        f"# Suggested by safeadapt monitor: the study of {export_dir}, with {labelled} labelled\n"
        f"# row(s) of the windows that raised an alert added as the OOD source '{name}'\n"
        "# (divided into OOD-validation, on which the verdict is chosen, and OOD test).\n"
        "# Run it with: safeadapt run <this file>\n"
    )
    write_atomic(Path(path), header + yaml.safe_dump(raw, sort_keys=False))
    return Path(path)


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

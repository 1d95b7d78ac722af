"""The study's result store: one folder per finished run, written so that a kill loses nothing.

Layout under the study's output folder::

    study.yaml                 the resolved config the results belong to
    runs/<run_id>/model.safetensors   optional checkpoint (written first)
    runs/<run_id>/record.json  the run's record (written last, atomically: its presence = done)

``run_id`` ends with the run's content hash, so a changed setting never reuses an old result.
A record that does not parse (e.g. a disk filled mid-write) is moved aside and the run redone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safeadapt.study.config import RunSpec

RECORD = "record.json"
MODEL = "model.safetensors"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"

    def folder(self, spec: RunSpec) -> Path:
        return self.runs_dir / spec.run_id

    def load(self, spec: RunSpec) -> dict[str, Any] | None:
        """The stored record of ``spec``, or ``None`` if it has not finished."""
        path = self.folder(spec) / RECORD
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            if record.get("run", {}).get("key") != spec.key:
                raise ValueError("key mismatch")
            return record
        except (ValueError, OSError):
            path.replace(path.with_name(RECORD + ".corrupt"))  # keep it for a look; redo the run
            return None

    def save(self, spec: RunSpec, record: dict[str, Any], model=None) -> Path:
        folder = self.folder(spec)
        folder.mkdir(parents=True, exist_ok=True)
        if model is not None:
            model.save(folder / MODEL, metadata={"run_id": spec.run_id, "key": spec.key})
        payload = {
            **record,
            "run": {
                "run_id": spec.run_id,
                "variant": spec.variant,
                "label": spec.label,
                "protocol": spec.protocol,
                "settings": spec.settings,
                "seed": spec.seed,
                "key": spec.key,
            },
        }
        write_atomic(folder / RECORD, json.dumps(payload, indent=1, default=float))
        return folder

"""The study's result store: one folder per finished run, written so that a kill loses nothing.

Layout under the study's output folder::

    study.yaml                 the resolved config the results belong to
    runs/<run_id>/predictions.parquet per-example outputs of every labelled split
    runs/<run_id>/model.safetensors   optional checkpoint
    runs/<run_id>/record.json  the run's record (written last, atomically: its presence = done)

``run_id`` ends with the run's content hash, so a changed setting never reuses an old result.
A record that does not parse (e.g. a disk filled mid-write) is moved aside and the run redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from safeadapt.files import write_atomic, write_parquet_atomic
from safeadapt.results import RunRecord
from safeadapt.study.plan import RunSpec

log = logging.getLogger(__name__)

RECORD = "record.json"
MODEL = "model.safetensors"
PREDICTIONS = "predictions.parquet"


def record_checksum(record: Mapping[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys), without its own ``checksum``."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


MARKER = ".safeadapt-study"


def claim_output(out: Path, study: str, force: bool = False) -> None:
    """Make ``out`` the folder of study ``study``: created fresh, or recognised as this study's
    (its marker file names the study). A folder holding files safeadapt did not write, or another
    study's results, is refused -- unless ``force`` (``--force``) hands another study's folder
    over -- so a study never overwrites files it did not write."""
    from safeadapt.errors import InvalidConfig

    if out.exists() and not out.is_dir():
        raise InvalidConfig(f"study output {str(out)!r} is a file; give a folder for 'output'.")
    if out.is_dir() and any(out.iterdir()):
        owner = study_of(out)
        if owner is None:
            found = ", ".join(sorted(p.name for p in out.iterdir())[:4])
            raise InvalidConfig(
                f"study output {str(out)!r} already holds files safeadapt did not write ({found}"
                "...); set 'output' to a new or empty folder."
            )
        if owner not in ("", study) and not force:
            raise InvalidConfig(
                f"study output {str(out)!r} holds the results of study {owner!r}, not {study!r}; "
                "set 'output' to another folder, or pass --force to replace that study's report "
                "and tables with this one's."
            )
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / MARKER, json.dumps({"study": study}) + "\n")


def study_of(out: Path) -> str | None:
    """The name of the study whose folder ``out`` is: from its marker (``""`` for an older,
    empty marker whose study is unknown), else ``None`` (not a study folder)."""
    marker = out / MARKER
    if marker.is_file():
        try:
            return str(json.loads(marker.read_text() or "{}").get("study", ""))
        except (ValueError, AttributeError, OSError):
            return ""
    legacy = out / "study.json"
    if legacy.is_file():
        try:
            return str(json.loads(legacy.read_text()).get("name", ""))
        except (ValueError, AttributeError, OSError):
            return ""
    return None


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"

    def folder(self, spec: RunSpec) -> Path:
        return self.runs_dir / spec.run_id

    @contextlib.contextmanager
    def lock(self, spec: RunSpec, wait: bool) -> Iterator[bool]:
        """An exclusive lock on the run (``flock`` on ``runs/<run>/.lock``; released when the
        process dies, so a killed run never blocks a later one). Yields whether it was taken:
        with ``wait=False`` it is not when another process holds it."""
        import fcntl

        folder = self.folder(spec)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                _drop_stale_temporaries(folder)
                yield True
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def has_model(self, spec: RunSpec) -> bool:
        return (self.folder(spec) / MODEL).is_file()

    def load(self, spec: RunSpec, move_aside: bool = True) -> RunRecord | None:
        """The stored record of ``spec``, or ``None`` if it has not finished. A record that does
        not parse, is not a mapping, belongs to another run, fails its checksum or does not
        read as a record is moved aside (every such copy is kept; not by a command that only
        reads, ``move_aside=False``) and the run is redone."""
        path = self.folder(spec) / RECORD
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict):
                raise ValueError("not a mapping")
            if record.get("run", {}).get("key") != spec.key:
                raise ValueError("key mismatch")
            stored = record.pop("checksum", None)
            if stored is not None and stored != record_checksum(record):
                raise ValueError("checksum mismatch")
            return RunRecord.from_json(record)
        except (
            ValueError,
            OSError,
            AttributeError,
            UnicodeDecodeError,
            KeyError,
            TypeError,
            IndexError,
            RecursionError,
        ) as err:
            if not move_aside:
                return None
            stamp = f"{RECORD}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            aside, n = path.with_name(stamp), 1
            while aside.exists():  # keep every corrupt copy
                aside, n = path.with_name(f"{stamp}-{n}"), n + 1
            path.replace(aside)
            log.warning(
                "run record %s is unusable (%s); kept as %s, the run is redone",
                path,
                err,
                aside.name,
            )
            return None

    def load_predictions(self, spec: RunSpec):
        """The run's per-example outputs (a pandas frame), or ``None`` if absent or unreadable."""
        import pandas as pd

        path = self.folder(spec) / PREDICTIONS
        if not path.is_file():
            return None
        try:
            return pd.read_parquet(path)
        except Exception as err:  # damaged file: report without intervals rather than fail
            log.warning("predictions %s are unreadable (%s); ignored", path, err)
            return None

    def save(self, record: RunRecord, model=None, predictions=None) -> Path:
        """Store a finished run (``record.run`` names it): predictions and model first, the
        record last, each atomically."""
        if record.run is None:
            raise ValueError("a record is stored under its run: use RunRecord.stored(run) first")
        folder = self.runs_dir / record.run.run_id
        folder.mkdir(parents=True, exist_ok=True)
        if predictions is not None:
            write_parquet_atomic(folder / PREDICTIONS, predictions)
        if model is not None:
            model.save(folder / MODEL, metadata={"run_id": record.run_id, "key": record.run.key})
        payload = json.loads(json.dumps(record.to_json(), default=float))  # what a reader sees
        payload["checksum"] = record_checksum(payload)
        write_atomic(folder / RECORD, json.dumps(payload, indent=1))
        return folder


def _drop_stale_temporaries(folder: Path) -> None:
    """The half-written files (``.<name>.<pid>.tmp``, ``files._atomic``) a killed writer left in
    a run's folder: removed once its lock is held, where the process that wrote them is gone
    (a SIGKILL gives it no chance to), so no temporary outlives the run that resumes it."""
    import os

    for tmp in folder.glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except PermissionError:  # alive, another user's
                pass

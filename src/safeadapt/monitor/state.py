"""A monitor's state on disk (the ``--out`` folder), read back as untrusted input.

``safeadapt-monitor.json`` (the header: the export watched, by content key, and the settings)
and ``windows/<index>.json`` (one finished window each) are read by typed, total readers: a
missing, unknown or mistyped key, a window named after another index or missing before it, is
one ``DataError`` (exit 2) naming the file. ``state_lock`` keeps two monitors on one folder from
writing it at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.monitor.signals.base import SignalEntry
from safeadapt.monitor.window import WindowResult

STATE = "safeadapt-monitor.json"
# 1: every window and every key inside STATE, rewritten after each window; 2: the export keyed
# on its weights and reference tensors only; 3: on every file of the export the monitor reads;
# 4: the signals measured (with their settings) in the header, each window's results by signal
STATE_SCHEMA = 4
LOCK = ".lock"
WINDOWS = "windows"


@dataclass(frozen=True)
class StateHeader:
    """``safeadapt-monitor.json``: the export watched (its content key), the settings, the
    signals measured (``Signal.describe``: name, alerts, settings; None before schema 4) and
    the windows from which a new alert budget started (``--allow-new-signals``); a schema-1
    state also kept every window and counted row here."""

    export: str
    settings: dict[str, Any]
    schema: int = 1
    consumed: dict[str, int] = field(default_factory=dict)
    windows: tuple[dict[str, Any], ...] = ()
    signals: tuple[SignalEntry, ...] | None = None
    budgets: tuple[int, ...] = ()


@dataclass(frozen=True)
class WindowEntry:
    """``windows/<index>.json``: one finished window's result and its rows' content keys."""

    result: WindowResult
    keys: tuple[str, ...]


@dataclass(frozen=True)
class _StoredEntry:
    result: dict[str, Any]  # read by WindowResult.from_json
    keys: tuple[str, ...]


def read_window(path: Path, expected: int) -> WindowEntry:
    """A window file, read strictly: typed, named after its own index, which is ``expected``
    (the windows before it are all there), with one content key per row."""
    from safeadapt.readback import read_object, typed

    fix = "move it away (or give a new --out) and run again"
    raw = typed(_StoredEntry, read_object(path, fix), str(path), fix)
    entry = WindowEntry(WindowResult.from_json(raw.result, f"{path}: key 'result'"), raw.keys)
    index = entry.result.index
    if path.name != f"{index:08d}.json":
        raise DataError(f"monitor: {path} holds window {index}, not the window its name says; "
                        f"{fix}.")  # fmt: skip
    if index != expected:
        raise DataError(f"monitor: {path} is window {index}, but window {expected} is missing "
                        f"before it; {fix}.")  # fmt: skip
    if len(entry.keys) != entry.result.rows:
        raise DataError(f"monitor: {path} counts {entry.result.rows} rows but keys "
                        f"{len(entry.keys)}; {fix}.")  # fmt: skip
    return entry


def read_header(path: Path) -> StateHeader:
    """The state's header, read strictly."""
    from safeadapt.readback import read_object, typed

    fix = "give a new --out (this is not a monitor state safeadapt wrote)"
    header = typed(StateHeader, read_object(path, fix), str(path), fix)
    if not 1 <= header.schema <= STATE_SCHEMA:
        raise InvalidConfig(f"monitor: {path} has schema {header.schema}, not one this "
                            "safeadapt reads; upgrade safeadapt.")  # fmt: skip
    return header


@contextlib.contextmanager
def state_lock(out: Path) -> Iterator[None]:
    """An exclusive lock on the state (``flock`` on ``out/.lock``, released when the process
    dies): a second monitor on the same ``--out`` waits for the first, then reads the windows
    it wrote, so no window is written twice or lost."""
    import fcntl
    import sys

    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"monitor: another monitor is writing {out}; waiting for it.", file=sys.stderr)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)

"""``Monitor``: watch an exported model on incoming inputs, window by window.

State (the ``out`` folder): ``safeadapt-monitor.json`` names the export it watches (keyed on
the content of its model and reference) and the window settings; ``windows/<index>.json``
holds one finished window's result and the content keys of its rows, written atomically when
the window is done. A killed run keeps its finished windows; running again with the same inputs
processes nothing, and with one more file only that file's rows. Rows that do not fill a window
wait for the next run (give the same files again; rows already counted are skipped by content,
each occurrence once). Writing a window costs its own size, not the history's; reading the
state reads every window once (the content keys of every counted row: 33 bytes a row).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.monitor.drifted import keep_window
from safeadapt.monitor.exported import (
    MANIFEST,
    MODEL,
    content_key,
    export_key,
    read_manifest,
    verify_export,
)
from safeadapt.monitor.inputs import Rows, read_inputs, rows_in_memory, time_order
from safeadapt.monitor.reference import META, REFERENCE_DIR, TENSORS, Reference
from safeadapt.monitor.result import MonitorResult
from safeadapt.monitor.signals import Options, Signal, plan
from safeadapt.monitor.signals.base import SignalEntry
from safeadapt.monitor.signals.ood_rate import check_detectors
from safeadapt.monitor.signals.stats import MMD_PER_SIDE
from safeadapt.monitor.state import (
    LOCK,
    STATE,
    STATE_SCHEMA,
    WINDOWS,
    StateHeader,
    read_header,
    read_window,
    state_lock,
)
from safeadapt.monitor.window import AlertPolicy, WindowResult, measure_window

MIN_WINDOW = 20  # the smallest window the tests are meaningful on (the kernel test needs 10)
MAX_WINDOW = 1_000_000
# rows of each window the pretrained backbone embeds (an export whose adaptation moved the
# backbone): the kernel test of its features compares at most this many per side anyway
PRETRAINED_ROWS = MMD_PER_SIDE


class Monitor:
    """Watches the export in ``export_dir``; its state lives in ``out``. ``pretrained_rows``:
    when the adaptation moved the backbone, the pretrained backbone's drift test is opt-in (a
    second backbone pass; on the bench's streams the adapted test alerted at the same windows):
    this many rows of each window (a seeded sample) are embedded for it -- as many as the test
    compares (``MMD_PER_SIDE``) cost it nothing; fewer save time and lose power."""

    def __init__(
        self,
        export_dir: str | Path,
        out: str | Path = "safeadapt-monitor",
        *,
        window: int = 500,
        alpha: float = 0.05,
        horizon: int = 50,
        input_column: str | None = None,
        label_column: str | None = None,
        time_column: str | None = None,
        pretrained_rows: int | None = None,
        more_detectors: tuple[str, ...] = (),
        allow_new_signals: bool = False,
    ) -> None:
        if pretrained_rows is not None and (
                not isinstance(pretrained_rows, int) or isinstance(pretrained_rows, bool)
                or not MIN_WINDOW <= pretrained_rows <= MAX_WINDOW):  # fmt: skip
            raise InvalidConfig(
                f"monitor: --pretrained-rows must be an integer from {MIN_WINDOW} to "
                f"{MAX_WINDOW:,}; got {pretrained_rows!r}."
            )
        if not isinstance(window, int) or not MIN_WINDOW <= window <= MAX_WINDOW:
            raise InvalidConfig(
                f"monitor: --window must be an integer from {MIN_WINDOW} to {MAX_WINDOW:,}; got "
                f"{window!r} (the drift tests need at least {MIN_WINDOW} inputs per window)."
            )
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise InvalidConfig(f"monitor: --alpha must be a number in (0, 1); got {alpha!r}.")
        if not isinstance(horizon, int) or not 1 <= horizon <= 1_000_000:
            raise InvalidConfig(f"monitor: --horizon must be an integer >= 1; got {horizon!r}.")
        self.export_dir, self.out = Path(export_dir), Path(out)
        self.manifest = read_manifest(self.export_dir)
        hashes = verify_export(self.export_dir, self.manifest)
        self.reference = Reference.load(self.export_dir)
        if self.reference.label_names != self.manifest.label_names:
            raise DataError(
                f"monitor: {self.export_dir / REFERENCE_DIR / META} names the classes "
                f"{list(self.reference.label_names)}, but {self.export_dir / MANIFEST} names "
                f"{list(self.manifest.label_names)}: one of them was edited; export the model "
                "again."
            )
        self.policy = AlertPolicy(alpha, horizon)
        self.window = window
        modality = self.manifest.modality
        written = self.manifest.monitor  # the study's own column names
        self.input_column = (input_column or (written.input_column if written else None)
                             or ("image" if modality == "image" else "text"))  # fmt: skip
        self.label_column, self.time_column = label_column, time_column
        self.settings = {"window": window, "alpha": alpha, "horizon": horizon,
                         "time_column": time_column}  # fmt: skip
        self.pretrained_rows = pretrained_rows or PRETRAINED_ROWS
        if pretrained_rows not in (None, PRETRAINED_ROWS):  # states made before keep their key
            self.settings["pretrained_rows"] = pretrained_rows
        # the signals measured: their list (with their settings) is in the state header, so a
        # resumed stream is measured as it began (or, by choice, starts a new alert budget)
        self.options = Options(check_detectors(more_detectors), pretrained_rows is not None)
        self.signals: list[Signal] = plan(self.reference, self.options)
        self.pretrained_pass = any(s.name == "embedding_pretrained" for s in self.signals)
        self.allow_new_signals = bool(allow_new_signals)
        self._fitted = False  # the signals are fitted on the reference once, at the first window
        self._header: StateHeader | None = None  # as last read
        self._notes: list[str] = []
        # every file of the export the monitor reads: an edited threshold is another export
        self.export_key = export_key(self.export_dir, (MANIFEST, MODEL, f"{REFERENCE_DIR}/{META}",
                                                       f"{REFERENCE_DIR}/{TENSORS}"), hashes)  # fmt: skip
        self._models: tuple[Any, Any] | None = None
        self._pending: Rows | None = None  # observe(): rows short of a window, for the next call
        # the state as this object last read or wrote it: (window files, counts, windows), so a
        # serving job's repeated observe() reads only the header, not every window again
        self._known: tuple[int, Counter, list[WindowResult]] | None = None

    # --- state ---

    def _state(self) -> tuple[Counter, list[WindowResult]]:
        """How many times each row content has been counted, and the finished windows."""
        path = self.out / STATE
        if self.out.exists() and not self.out.is_dir():
            raise InvalidConfig(f"monitor: --out {self.out} is a file; give a folder.")
        if not path.is_file():
            if self.out.is_dir() and any(p.name != LOCK for p in self.out.iterdir()):
                raise InvalidConfig(
                    f"monitor: {self.out} exists, is not empty and holds no {STATE}: it is not "
                    "a monitor's folder; give a new --out."
                )
            return Counter(), []
        state = read_header(path)
        if state.export != self.export_key and not self._legacy_key(state):
            raise InvalidConfig(
                f"monitor: {self.out} watches another export (or this one changed since: its "
                "manifest, weights or reference); give a new --out for this export."
            )
        settings = dict(state.settings)
        if state.schema < 4:  # the detectors were a setting then; the header's signals now
            settings.pop("more_detectors", None)
        if settings != self.settings:
            raise InvalidConfig(
                f"monitor: {self.out} was made with {state.settings}; run with the same "
                "settings, or give a new --out."
            )
        self._check_signals(state)
        self._header = state
        files = sorted((self.out / WINDOWS).glob("*.json"))
        if self._known is not None and self._known[0] == len(files):
            return self._known[1], self._known[2]  # nothing written since by anyone else
        # schema 1 kept everything in STATE: read as the history before the window files
        consumed = Counter(state.consumed)
        windows = [WindowResult.from_json(w) for w in state.windows]
        for file in files:
            entry = read_window(file, expected=len(windows))
            windows.append(entry.result)
            consumed.update(entry.keys)
        self._known = (len(files), consumed, windows)
        return consumed, windows

    def _legacy_key(self, state: StateHeader) -> bool:
        """A state made before the key covered the manifest and ``reference.json`` (schema <= 2)
        that matches this export's weights and reference tensors: its header is rewritten with
        the full key, from which on an edit of any of those files is refused."""
        from safeadapt.files import write_atomic

        if state.schema > 2:
            return False
        old = content_key(self.export_dir, (MODEL, f"{REFERENCE_DIR}/{TENSORS}"))
        if state.export != old:
            return False
        header = {"schema": 3, "export": self.export_key, "settings": state.settings}
        if state.consumed or state.windows:  # schema 1's history stays where it was
            header.update(consumed=dict(state.consumed), windows=list(state.windows))
        write_atomic(self.out / STATE, json.dumps(header))
        return True

    def _recorded(self, state: StateHeader) -> tuple[SignalEntry, ...]:
        """The signals the state was measured with; before schema 4 the header did not say:
        those this release plans for the export and the detectors the settings named (and
        every monitor then tested the pretrained features of a moved backbone)."""
        if state.signals is not None:
            return state.signals
        more = check_detectors(state.settings.get("more_detectors", ()))
        return _entries(plan(self.reference, Options(more, pretrained_pass=True)))

    def _check_signals(self, state: StateHeader) -> None:
        """A state measured with other signals is refused (their number sets the windows' alert
        level), unless ``allow_new_signals``: then the next window starts a new budget."""
        recorded, now = self._recorded(state), _entries(self.signals)
        if recorded == now or self.allow_new_signals:
            return
        raise InvalidConfig(
            f"monitor: {self.out} was measured with other signals ({_changes(recorded, now)}), "
            "which changes the alert level; run with the same --more-detectors, "
            "--pretrained-rows and safeadapt, "
            "give a new --out, or pass --allow-new-signals to start a new alert budget from "
            "the next window."
        )

    def _start(self, windows: int) -> None:
        """The state's header: written once; rewritten when an older schema's header is carried
        forward or the signals changed (``allow_new_signals``: a new budget from ``windows``).
        A schema-1 file's history stays in it, read as before."""
        from safeadapt.files import write_atomic

        now = _entries(self.signals)
        state = self._header if (self.out / STATE).is_file() else None
        if state is not None and state.schema == STATE_SCHEMA and state.signals == now:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        budgets = list(state.budgets) if state is not None else []
        if state is not None:
            recorded = self._recorded(state)
            if recorded != now:
                budgets.append(windows)
                self._notes.append(f"The signals changed at window {windows} "
                                   f"({_changes(recorded, now)}): a new alert budget starts "
                                   "there (--allow-new-signals).")  # fmt: skip
        header: dict[str, Any] = {"schema": STATE_SCHEMA, "export": self.export_key,
                                  "settings": self.settings,
                                  "signals": [dataclasses.asdict(e) for e in now],
                                  "budgets": budgets}  # fmt: skip
        if state is not None and (state.consumed or state.windows):
            header.update(consumed=dict(state.consumed), windows=list(state.windows))
        write_atomic(self.out / STATE, json.dumps(header))
        self._header = read_header(self.out / STATE)

    def _save_window(self, result: WindowResult, keys: list[str]) -> None:
        from safeadapt.files import write_atomic

        folder = self.out / WINDOWS
        folder.mkdir(parents=True, exist_ok=True)
        entry = {"result": result.to_json(), "keys": list(keys)}
        write_atomic(folder / f"{result.index:08d}.json", json.dumps(entry))

    def _study_columns(self) -> tuple[str, str]:
        """The study's own input and label column names, for the rows a suggested study
        reads back (the built-in tasks: text / label)."""
        written = self.manifest.monitor
        text = written.input_column if written else "text"
        label = (written.label_column if written else None) or "label"
        return text, label if label != text else f"{label}_label"

    # --- models ---

    def _models_loaded(self):
        if self._models is None:
            from safeadapt.monitor.exported import classifier, pretrained_backbone

            model = classifier(self.manifest, self.export_dir / MODEL)
            moved = not self.reference.same_backbone and self.pretrained_pass
            base = pretrained_backbone(self.manifest) if moved else None
            self._models = (model, base)
        return self._models

    # --- the work ---

    def update(self, sources: list[str | Path]) -> MonitorResult:
        """Read ``sources``, measure every full window of rows not counted before, keep state.
        Rows short of a window wait: give the same files again next time."""
        rows = read_inputs(
            list(sources), modality=self.manifest.modality, input_column=self.input_column,
            label_names=self.reference.label_names, label_column=self.label_column,
            time_column=self.time_column,
        )  # fmt: skip
        return self._process(rows, by_time=self.time_column is not None)[0]

    def observe(self, inputs, labels=None, times=None) -> MonitorResult:
        """In-memory inputs, as a serving job has them: texts, or images as one uint8 array
        ``(N, H, W[, 3])``; ``labels`` as class names (None where not come back); ``times``
        to order them by. Rows short of a window stay in this object for the next call."""
        rows = rows_in_memory(inputs, self.manifest.modality, self.reference.label_names,
                              labels, times)  # fmt: skip
        return self._observe_rows(rows, by_time=times is not None)

    def _observe_rows(self, rows: Rows, by_time: bool) -> MonitorResult:
        if self._pending is not None:
            rows = self._pending.extend(rows)
        result, self._pending = self._process(rows, by_time=by_time)
        return result

    def background(self, max_queued: int = 64):
        """This monitor with ``observe()`` that returns at once: a worker thread measures the
        windows in order (``monitor.background.BackgroundMonitor``; ``flush()`` / ``close()``,
        or use it as a context manager)."""
        from safeadapt.monitor.background import BackgroundMonitor

        return BackgroundMonitor(self, max_queued)

    def result(self) -> MonitorResult:
        """The state as it stands (every window measured so far), measuring nothing."""
        _, windows = self._state()
        pending = len(self._pending) if self._pending is not None else 0
        return MonitorResult(tuple(windows), (), pending, 0, self.policy,
                             self.reference.estimate_error(), budgets=self._budgets())  # fmt: skip

    def _budgets(self) -> tuple[int, ...]:
        return tuple(self._header.budgets) if self._header is not None else ()

    def _process(self, rows: Rows, by_time: bool) -> tuple[MonitorResult, Rows]:
        """Measure every full window of the rows not counted before; the rows left over."""
        self._state()  # a folder that is not a monitor's is refused before the lock is made
        with state_lock(self.out):
            return self._process_locked(rows, by_time)

    def _process_locked(self, rows: Rows, by_time: bool) -> tuple[MonitorResult, Rows]:
        consumed, windows = self._state()
        seen: Counter = Counter()
        fresh = []
        for i, key in enumerate(rows.keys):
            seen[key] += 1
            if seen[key] > consumed[key]:
                fresh.append(i)
        skipped = len(rows) - len(fresh)
        new_rows = rows.take(np.asarray(fresh, dtype=np.int64))
        if by_time:
            new_rows = new_rows.take(time_order(new_rows.times, self.time_column or "times"))
        full = len(new_rows) // self.window
        self._start(len(windows))
        new = []
        for w in range(full):
            part = new_rows.take(np.arange(w * self.window, (w + 1) * self.window))
            result = self._measure(part, index=len(windows))
            if result.alerts:  # its labelled rows are what a suggested study chooses on
                keep_window(
                    self.out, result.index, part, self.reference.label_names, self._study_columns()
                )
            self._save_window(result, part.keys)  # a killed run keeps the windows it finished
            windows.append(result)
            new.append(result.index)
            consumed.update(part.keys)
            files = self._known[0] + 1 if self._known is not None else 1
            self._known = (files, consumed, windows)
        left = new_rows.take(np.arange(full * self.window, len(new_rows)))
        result = MonitorResult(tuple(windows), tuple(new), len(left), skipped, self.policy,
                               self.reference.estimate_error(), tuple(self._notes),
                               self._budgets())  # fmt: skip
        self._notes.clear()
        if new or not (self.out / "monitor.html").exists():  # figures only when they change
            self._write_outputs(result)
        return result, left

    def _measure(self, rows: Rows, index: int) -> WindowResult:
        import hashlib
        import time

        from safeadapt.data.task import Split
        from safeadapt.monitor.reference import window_outputs

        started = time.perf_counter()
        model, base = self._models_loaded()
        if not self._fitted:
            head = (model.head.weight.detach().float(), model.head.bias.detach().float())
            for signal in self.signals:
                signal.fit(self.reference, head)
            self._fitted = True
        split = Split(f"window {index}", rows.inputs, rows.labels)
        take = None  # the pretrained pass: a seeded sample of the window's rows
        if base is not None and len(rows) > self.pretrained_rows:
            rng = np.random.default_rng(self.reference.seed + index)
            take = np.sort(rng.choice(len(rows), self.pretrained_rows, replace=False))
        pre, adapted, logits = window_outputs(model, base, split, base is None,
                                              pretrained_rows=take)  # fmt: skip
        key = hashlib.sha256("|".join(rows.keys).encode()).hexdigest()
        span = (str(rows.times[0]), str(rows.times[-1])) if rows.times else (None, None)
        result = measure_window(self.signals, pre, adapted, logits, rows.labels, self.policy,
                                index=index, key=key, seed=self.reference.seed + index,
                                span=span)  # fmt: skip
        return dataclasses.replace(result, seconds=round(time.perf_counter() - started, 4))

    def _write_outputs(self, result: MonitorResult) -> None:
        from safeadapt.files import write_atomic
        from safeadapt.monitor import html

        if result.windows:
            write_atomic(self.out / "monitor.csv", result.frame().to_csv(index=False))
        html.write(result, self.out / "monitor.html", str(self.export_dir))


def _entries(signals: list[Signal]) -> tuple[SignalEntry, ...]:
    return tuple(s.describe() for s in signals)


def _changes(before: tuple[SignalEntry, ...], after: tuple[SignalEntry, ...]) -> str:
    """What differs between two signal lists, in a few words."""
    names_before, names_after = {e.name for e in before}, {e.name for e in after}
    added, removed = sorted(names_after - names_before), sorted(names_before - names_after)
    changed = sorted(e.name for e in after if e.name in names_before and e not in before)
    parts = [f"{what} {', '.join(names)}" for what, names in
             (("added", added), ("removed", removed), ("changed", changed)) if names]  # fmt: skip
    return "; ".join(parts) or "their order"

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

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.monitor.detectors import check_detectors
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
from safeadapt.monitor.signals import MMD_PER_SIDE
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
from safeadapt.monitor.window import AlertPolicy, WindowResult, ci_text, measure_window

MIN_WINDOW = 20  # the smallest window the tests are meaningful on (the kernel test needs 10)
MAX_WINDOW = 1_000_000
# rows of each window the pretrained backbone embeds (an export whose adaptation moved the
# backbone): the kernel test of its features compares at most this many per side anyway
PRETRAINED_ROWS = MMD_PER_SIDE


@dataclass(frozen=True)
class MonitorResult:
    """Every window of the state, which of them this update measured, and the rows waiting."""

    windows: tuple[WindowResult, ...]
    new: tuple[int, ...]
    pending: int
    skipped: int  # rows already counted in an earlier update
    policy: AlertPolicy
    estimate_error: dict[str, float | None]

    @property
    def new_alerts(self) -> tuple[WindowResult, ...]:
        return tuple(w for w in self.windows if w.index in self.new and w.alerts)

    def frame(self):
        import pandas as pd

        return pd.DataFrame([w.row() for w in self.windows])

    def _repr_html_(self) -> str:
        """The windows' table and the alert status, styled under one root class (a notebook
        page keeps its own styles)."""
        from safeadapt.monitor.html import fragment

        return fragment(self)

    def summary(self) -> str:
        lines = [f"{len(self.new)} new window(s), {len(self.windows)} in all; {self.skipped} "
                 f"row(s) counted before were skipped; {self.pending} row(s) wait for the next "
                 f"window. Alerts: {self.policy.describe()}."]  # fmt: skip
        err = self.estimate_error
        track = ", ".join(
            f"{k.upper()} off by up to {v:.3f}" for k, v in err.items() if v is not None
        )
        for w in self.windows:
            if w.index not in self.new:
                continue
            acc = (f"; accuracy {w.accuracy.accuracy:.3f} [{w.accuracy.ci_low:.3f}, "
                   f"{w.accuracy.ci_high:.3f}] on {w.accuracy.labelled} labelled"
                   if w.accuracy else "")  # fmt: skip
            if w.coverage:
                acc += (f", 90 % conformal sets cover {w.coverage.accuracy:.3f} "
                        f"[{w.coverage.ci_low:.3f}, {w.coverage.ci_high:.3f}]")  # fmt: skip
            flag = f"ALERT ({', '.join(w.alerts)})" if w.alerts else "ok"
            knn = (f", kNN {w.ood_knn.rate:.3f} (reference {w.ood_knn.reference_rate:.3f})"
                   if w.ood_knn else "")  # fmt: skip
            knn += "".join(f", {name} {r.rate:.3f} (reference {r.reference_rate:.3f})"
                           for name, r in w.ood_more.items())  # fmt: skip
            lines.append(
                f"  window {w.index} ({w.rows} rows): {flag}; estimated accuracy ATC "
                f"{w.atc:.3f}{ci_text(w.atc_ci)}, DoC {w.doc:.3f}{ci_text(w.doc_ci)}, "
                f"under label shift (BBSE) {w.bbse:.3f}{ci_text(w.bbse_ci)}; OOD "
                f"rate: energy {w.ood.rate:.3f} (reference "
                f"{w.ood.reference_rate:.3f}){knn}{acc}"
            )
        if track:
            lines.append(f"On the study's labelled shifted splits the estimates were {track} "
                         "(their 95 % intervals hold where the model errs as on the "
                         "reference; a shift can break that).")  # fmt: skip
        return "\n".join(lines)


class Monitor:
    """Watches the export in ``export_dir``; its state lives in ``out``. ``pretrained_rows``:
    when the adaptation moved the backbone, how many rows of each window (a seeded sample) the
    pretrained backbone embeds for its drift test -- by default as many as the test compares
    (``MMD_PER_SIDE``), so the sample costs it nothing; fewer save time and lose power."""

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
    ) -> None:
        pretrained_rows = PRETRAINED_ROWS if pretrained_rows is None else pretrained_rows
        if not isinstance(pretrained_rows, int) or not MIN_WINDOW <= pretrained_rows <= MAX_WINDOW:
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
        self.pretrained_rows = pretrained_rows
        if pretrained_rows != PRETRAINED_ROWS:  # a state made before the setting keeps its key
            self.settings["pretrained_rows"] = pretrained_rows
        self.more_detectors = check_detectors(more_detectors)
        if self.more_detectors:  # likewise
            self.settings["more_detectors"] = list(self.more_detectors)
        self._fitted: tuple | None = None  # the more detectors, fitted once on the reference
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
        if state.settings != self.settings:
            raise InvalidConfig(
                f"monitor: {self.out} was made with {state.settings}; run with the same "
                "settings, or give a new --out."
            )
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
        header = {"schema": STATE_SCHEMA, "export": self.export_key, "settings": state.settings}
        if state.consumed or state.windows:  # schema 1's history stays where it was
            header.update(consumed=dict(state.consumed), windows=list(state.windows))
        write_atomic(self.out / STATE, json.dumps(header))
        return True

    def _start(self) -> None:
        """The state's header, once (a schema-1 file's history stays in it, read as before)."""
        from safeadapt.files import write_atomic

        if (self.out / STATE).is_file():
            return
        self.out.mkdir(parents=True, exist_ok=True)
        header = {"schema": STATE_SCHEMA, "export": self.export_key, "settings": self.settings}
        write_atomic(self.out / STATE, json.dumps(header))

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
            base = None if self.reference.same_backbone else pretrained_backbone(self.manifest)
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
                             self.reference.estimate_error())  # fmt: skip

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
        self._start()
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
                               self.reference.estimate_error())  # fmt: skip
        if new or not (self.out / "monitor.html").exists():  # figures only when they change
            self._write_outputs(result)
        return result, left

    def _measure(self, rows: Rows, index: int) -> WindowResult:
        import dataclasses
        import hashlib
        import time

        from safeadapt.data.task import Split
        from safeadapt.monitor.reference import window_outputs

        started = time.perf_counter()
        model, base = self._models_loaded()
        if self._fitted is None:
            from safeadapt.monitor.detectors import fit_detectors

            head = (model.head.weight.detach().float(), model.head.bias.detach().float())
            self._fitted = fit_detectors(self.reference, self.more_detectors, head)
        split = Split(f"window {index}", rows.inputs, rows.labels)
        take = None  # the pretrained pass: a seeded sample of the window's rows
        if not self.reference.same_backbone and len(rows) > self.pretrained_rows:
            rng = np.random.default_rng(self.reference.seed + index)
            take = np.sort(rng.choice(len(rows), self.pretrained_rows, replace=False))
        pre, adapted, logits = window_outputs(model, base, split, self.reference.same_backbone,
                                              pretrained_rows=take)  # fmt: skip
        key = hashlib.sha256("|".join(rows.keys).encode()).hexdigest()
        span = (str(rows.times[0]), str(rows.times[-1])) if rows.times else (None, None)
        result = measure_window(self.reference, pre, adapted, logits, rows.labels, self.policy,
                                index=index, key=key, span=span, more=self._fitted)  # fmt: skip
        return dataclasses.replace(result, seconds=round(time.perf_counter() - started, 4))

    def _write_outputs(self, result: MonitorResult) -> None:
        from safeadapt.files import write_atomic
        from safeadapt.monitor import html

        if result.windows:
            write_atomic(self.out / "monitor.csv", result.frame().to_csv(index=False))
        html.write(result, self.out / "monitor.html", str(self.export_dir))

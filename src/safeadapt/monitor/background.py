"""Serving without stalls: ``Monitor.observe()`` in a worker thread.

``Monitor.observe()`` measures every window its rows complete before it returns (25-45 s a
window of 100 texts on a busy 2-core machine), which stalls a serving loop that calls it.
:class:`BackgroundMonitor` checks and keys the inputs in the caller's thread (a bad input is the
caller's error at once) and hands them to one worker thread, which measures the windows in the
order the inputs came, exactly as ``observe()`` would: the same windows, the same state files.
The queue is bounded, so a caller faster than the worker waits rather than filling memory. An
error in the worker is raised by the next ``observe()``, ``flush()`` or ``close()``.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any

from safeadapt.monitor.inputs import rows_in_memory


class BackgroundMonitor:
    """``observe()`` returns at once; ``flush()`` waits for every window given so far and
    returns the state with the windows measured since the last flush as new; ``close()``
    flushes and stops the worker."""

    def __init__(self, monitor: Any, max_queued: int = 64) -> None:
        """``monitor``: the ``Monitor`` whose ``observe`` this runs in the worker (it builds
        this object: ``Monitor.background()``; not imported here, which would make a loop)."""
        if not isinstance(max_queued, int) or max_queued < 1:
            from safeadapt.errors import InvalidConfig

            raise InvalidConfig(f"monitor background: max_queued must be >= 1; got {max_queued!r}.")
        self.monitor = monitor
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._error: BaseException | None = None
        self._new: list[int] = []
        self._guard = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="safeadapt-monitor", daemon=True)
        self._thread.start()

    def observe(self, inputs, labels=None, times=None) -> None:
        """As ``Monitor.observe``, without waiting for the windows' measurement."""
        self._raise()
        if self._closed:
            from safeadapt.errors import InvalidConfig

            raise InvalidConfig("monitor background: observe() after close().")
        m = self.monitor
        rows = rows_in_memory(inputs, m.manifest.modality, m.reference.label_names, labels, times)
        self._queue.put((rows, times is not None))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:  # after an error, nothing more is measured
                    result = self.monitor._observe_rows(*item)
                    with self._guard:
                        self._new.extend(result.new)
            except BaseException as err:  # raised in the caller's thread by _raise
                self._error = err
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def flush(self) -> Any:
        """Wait until every input given so far is measured (or waits for a full window)."""
        self._queue.join()
        self._raise()
        with self._guard:
            new, self._new = tuple(self._new), []
        return dataclasses.replace(self.monitor.result(), new=new)

    def close(self) -> Any:
        """Flush, then stop the worker; the monitor's state is as after the same ``observe``
        calls in the foreground."""
        if self._closed:
            return self.monitor.result()
        try:
            return self.flush()
        finally:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> BackgroundMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

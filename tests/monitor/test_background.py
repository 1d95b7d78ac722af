"""Serving without stalls (issue 39 item 4): observe() in a worker thread gives the windows the
foreground gives, returns while a window is being measured, and reports errors."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.monitor import Monitor
from tests.monitor.test_untrusted import unit_export  # noqa: F401  (the fixture)

VOLATILE = ("seconds",)


def _frame(out):
    frame = pd.read_csv(out / "monitor.csv")
    return frame[[c for c in frame.columns if c not in VOLATILE]]


def test_background_observe_gives_the_foreground_windows_without_waiting(unit_export, tmp_path):  # noqa: F811
    unit, task, _ = unit_export
    names = list(task.label_names)
    texts = list(task.test.inputs[:90])
    labels = [names[i] for i in task.test.labels[:90]]
    chunks = [(texts[i : i + 25], labels[i : i + 25]) for i in range(0, 90, 25)]
    fore = Monitor(unit, tmp_path / "fore", window=20)
    for t, y in chunks:
        fore.observe(t, labels=y)
    back = Monitor(unit, tmp_path / "back", window=20)
    with back.background() as bg:
        for t, y in chunks[:2]:
            bg.observe(t, labels=y)
        first = bg.flush()
        assert first.new == (0, 1) and first.pending == 10
        # while the state is locked the worker cannot finish a window, yet observe returns
        from safeadapt.monitor.state import state_lock

        with state_lock(tmp_path / "back"):
            returned = threading.Event()
            caller = threading.Thread(target=lambda: (bg.observe(*chunks[2]), returned.set()))
            caller.start()
            assert returned.wait(30) and len(list((tmp_path / "back" / "windows").iterdir())) == 2
        for t, y in chunks[3:]:
            bg.observe(t, labels=y)
        last = bg.close()
    assert last.new == (2, 3) and [w.index for w in last.windows] == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(_frame(tmp_path / "fore"), _frame(tmp_path / "back"))


def test_background_errors_reach_the_caller(unit_export, tmp_path):  # noqa: F811
    unit, task, _ = unit_export
    mon = Monitor(unit, tmp_path / "s", window=20)
    with mon.background() as bg:
        with pytest.raises(DataError, match="wrap it"):  # checked in the caller's thread
            bg.observe("one text")
    with pytest.raises(InvalidConfig, match="after close"):
        bg.observe(["a text"])
    # an error in the worker (a folder that is not a monitor's) comes back on flush
    other = tmp_path / "not-a-monitor"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    broken = Monitor(unit, other, window=20).background()
    broken.observe(list(task.test.inputs[:20]))
    with pytest.raises(InvalidConfig, match="is not a monitor's folder"):
        broken.flush()
    with pytest.raises(InvalidConfig, match="is not a monitor's folder"):
        broken.close()  # the folder still is not a monitor's; the worker stops all the same
    assert not broken._thread.is_alive()

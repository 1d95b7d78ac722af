"""The run store: a run folder's lock clears what a killed writer left half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from safeadapt.study.store import RunStore


def test_taking_a_runs_lock_drops_the_temporaries_of_writers_that_are_gone(tmp_path):
    """A writer killed between writing ``.<name>.<pid>.tmp`` and renaming it leaves the file
    behind (SIGKILL: no cleanup). Whoever takes the run's lock next removes it -- but not the
    temporaries of a process still alive, nor its own."""
    store = RunStore(tmp_path)
    spec = SimpleNamespace(run_id="lp-seed0-abc")
    folder = store.folder(spec)
    folder.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = folder / f".predictions.parquet.{int(gone.stdout)}.tmp"
    alive = folder / f".record.json.{os.getppid()}.tmp"
    own = folder / f".model.safetensors.{os.getpid()}.tmp"
    for path in (dead, alive, own):
        path.write_text("half")
    with store.lock(spec, wait=True) as taken:
        assert taken
        assert not dead.exists() and alive.exists() and own.exists()

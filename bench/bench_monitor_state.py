"""The monitor's state at a long history: seconds to save one more window and to read the
state, for the layout of one file per window (schema 2) against one file holding every key and
window (schema 1, rewritten after each window). Synthetic windows (content keys and a stored
window result of the real shape); no model runs.

    .venv/bin/python bench/bench_monitor_state.py --windows 1000 --window 500
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path


def _result(index: int) -> dict:
    """A stored window result of about the real size (its JSON has ~40 numbers)."""
    return {"index": index, "rows": 500, **{f"value_{i}": 0.123456789 * i for i in range(40)}}


def main() -> None:
    from safeadapt.files import write_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--window", type=int, default=500)
    args = parser.parse_args()
    n, size = args.windows, args.window
    keys = [[f"{w:08d}{i:024d}" for i in range(size)] for w in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # schema 2: one file per window; the last save costs one window
        folder = root / "v2" / "windows"
        folder.mkdir(parents=True)
        for w in range(n):
            entry = {"result": _result(w), "keys": keys[w]}
            write_atomic(folder / f"{w:08d}.json", json.dumps(entry))
        t0 = time.perf_counter()
        write_atomic(folder / f"{n:08d}.json", json.dumps({"result": _result(n), "keys": keys[0]}))
        save_v2 = time.perf_counter() - t0
        t0 = time.perf_counter()
        consumed: Counter = Counter()
        for file in sorted(folder.glob("*.json")):
            consumed.update(json.loads(file.read_text())["keys"])
        read_v2 = time.perf_counter() - t0
        # schema 1: the whole history in one file, rewritten after each window
        consumed = Counter(k for ks in keys for k in ks)
        state = {"consumed": dict(consumed), "windows": [_result(w) for w in range(n)]}
        t0 = time.perf_counter()
        write_atomic(root / "v1.json", json.dumps(state))
        save_v1 = time.perf_counter() - t0
        t0 = time.perf_counter()
        Counter(json.loads((root / "v1.json").read_text())["consumed"])
        read_v1 = time.perf_counter() - t0
        size_mb = (root / "v1.json").stat().st_size / 1e6
    out = {"windows": n, "window": size, "save_one_window_s": {"v2": save_v2, "v1": save_v1},
           "read_state_s": {"v2": read_v2, "v1": read_v1}, "v1_state_mb": size_mb}  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

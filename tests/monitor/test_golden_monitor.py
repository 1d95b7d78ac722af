"""A golden monitor run (issue 39's safety net): one seeded stream through an LP export of the
packaged MiniLM -- 100 movie snippets the model never saw, then 100 tweets, in windows of 50,
labels back for part of the rows -- must give the same ``monitor.csv`` (floats to 1e-9) and the same alerts as when the
golden file was written, by the code before the monitor's plug-in redesign.

One math thread and a feature cache of its own, so the floats do not depend on how many threads
the test process has or on features another test cached. Regenerate deliberately, after a
change meant to move the numbers, with ``SAFEADAPT_WRITE_GOLDEN=1 pytest
tests/monitor/test_golden_monitor.py``, and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

GOLDEN = Path(__file__).parent / "golden" / "monitor-stream.json"
VOLATILE = ("seconds",)  # wall time


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _stream(tmp_path: Path, task) -> list[Path]:
    names = np.asarray(task.label_names)
    movies = pd.DataFrame({"text": task.test.inputs[:100]})
    labels = names[task.test.labels[:100]].astype(object)
    labels[1::3] = None  # a third of the labels have not come back
    movies["label"] = labels
    tweets = task.ood["tweets"]
    shifted = pd.DataFrame({"text": tweets.inputs[:100], "label": names[tweets.labels[:100]]})
    paths = [tmp_path / "movies.csv", tmp_path / "tweets.csv"]
    movies.to_csv(paths[0], index=False)
    shifted.to_csv(paths[1], index=False)
    return paths


def _rows(out: Path) -> list[dict]:
    frame = pd.read_csv(out / "monitor.csv")
    frame = frame[[c for c in frame.columns if c not in VOLATILE]]
    rows = json.loads(frame.to_json(orient="records", double_precision=15))
    return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in rows]  # fmt: skip


def test_the_golden_stream_gives_the_golden_windows(tmp_path, one_thread, minilm_factory):
    from safeadapt.data import load_builtin_task
    from safeadapt.data.features import FeatureCache
    from safeadapt.monitor import Monitor
    from safeadapt.protocols import FitContext, make_protocol
    from tests.monitor.test_monitor import _export

    task = load_builtin_task("vader-sentiment").subsample(max_train=100, max_eval=100, seed=0)
    cache = FeatureCache(tmp_path / "features")
    fit = make_protocol("lp").fit(FitContext(task, minilm_factory, 0, cache, False))
    folder = _export(tmp_path / "export", fit.model, minilm_factory(), task,
                     {"name": "minilm", "options": {"max_length": 32}})  # fmt: skip
    out = tmp_path / "watch"
    result = Monitor(folder, out, window=50, label_column="label").update(_stream(tmp_path, task))
    got = {"alerts": [list(w.alerts) for w in result.windows], "rows": _rows(out)}
    if os.environ.get("SAFEADAPT_WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {GOLDEN}")
    want = json.loads(GOLDEN.read_text())
    assert got["alerts"] == want["alerts"]
    assert len(got["rows"]) == len(want["rows"])
    for g, w in zip(got["rows"], want["rows"], strict=True):
        assert sorted(g) == sorted(w), set(g) ^ set(w)
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (w["window"], key)
            else:
                assert g[key] == value, (w["window"], key)

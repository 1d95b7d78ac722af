"""The per-run cost model of ``docs/scaling.md``, measured on this machine:

    t_run = t_train * N_train * epochs + t_eval * N_eval + t_fixed

``t_train``: seconds per training example (forward + backward + AdamW step, batch 32);
``t_eval``: seconds per evaluated example (one forward pass in eval mode); ``t_fixed``: loading,
the start, the LP head, the summary. Each backbone runs FT on a grid of training-set sizes,
epochs and evaluation-set sizes (safety suite off: its samples are capped, see the doc), and the
three coefficients are fitted by least squares over the runs; the largest residual is printed.

    .venv/bin/python bench/bench_cost_model.py [--backbone efficientnet-lite0 minilm] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

SETUPS = {
    "efficientnet-lite0": {
        "task": "mnist",
        "backbone": {"name": "efficientnet-lite0", "options": {"image_size": 224}},
        "train": (96, 192),
        "eval": (96, 288),
    },
    "minilm": {
        "task": "vader-sentiment",
        "backbone": {"name": "minilm", "options": {"max_length": 64}},
        "train": (256, 768),
        "eval": (256, 1024),
    },
}


def measure(name: str, threads: int) -> None:
    import torch

    from safeadapt.data.features import FeatureCache
    from safeadapt.study import StudyConfig, run_study

    torch.set_num_threads(threads)
    setup = SETUPS[name]
    work = Path(tempfile.mkdtemp())
    cache = FeatureCache(work / "features")
    rows = []
    for i, (n_train, epochs, n_eval) in enumerate(
        itertools.product(setup["train"], (1, 2), setup["eval"])
    ):
        raw = {
            "name": f"cost-{i}",
            "task": {"builtin": setup["task"], "max_train": n_train, "max_eval": n_eval},
            "backbone": setup["backbone"],
            "protocols": {"ft": {"epochs": epochs, "batch_size": 32, "lr": 1e-4, "patience": 9}},
            "safety": False,
            "preflight": {"checks": []},
            "output": str(work / f"out-{i}"),
        }
        config = StudyConfig.from_dict(raw)
        task = config.task.load()
        start = time.perf_counter()
        run_study(config, cache=cache, show_progress=False, log=lambda m: None, report=False)
        seconds = time.perf_counter() - start
        # val: the start and each epoch (early stopping), then with every split for the record
        evaluated = len(task.val) * (epochs + 1)
        evaluated += sum(len(s) for s in task.selection_splits().values())
        evaluated += sum(len(s) for s in task.eval_splits().values())
        rows.append((len(task.train) * epochs, evaluated, seconds))
        print(
            f"  {name}: train {len(task.train)} x {epochs} epochs, {evaluated} evaluated: "
            f"{seconds:.1f} s",
            flush=True,
        )
    a = np.array([[r[0], r[1], 1.0] for r in rows])
    y = np.array([r[2] for r in rows])
    (t_train, t_eval, t_fixed), *_ = np.linalg.lstsq(a, y, rcond=None)
    worst = float(np.max(np.abs(a @ [t_train, t_eval, t_fixed] - y) / y))
    print(
        f"{name} ({threads} threads): t_train {t_train * 1e3:.1f} ms/example, t_eval "
        f"{t_eval * 1e3:.2f} ms/example, t_fixed {t_fixed:.1f} s; largest residual "
        f"{worst:.1%} over {len(rows)} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for name in args.backbone:
        measure(name, args.threads)


if __name__ == "__main__":
    main()

"""Scale-out costs on this machine (issue 14), each alternated A/B, medians of repeats:

1. ``ray``: the Ray executor's overhead per run against the sequential executor on the same
   runs -- a local Ray cluster of 1 CPU (one task at a time, like the sequential loop) and 1 torch
   thread on both sides, so the difference is Ray's own cost (task submission, the task's
   transfer through the object store, a worker process's imports) and not parallelism. The
   cluster's start-up is timed separately (a fixed cost per study).
2. ``eval``: the same FT study's wall time as one process (2 threads) and as two processes under
   ``accelerate launch`` (1 thread each): extraction, evaluation and training split between them.

    .venv/bin/python bench/bench_scaleout.py [--what ray eval] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "name": "bench-scaleout",
    "task": {"builtin": "mnist", "max_train": 200, "max_eval": 200},
    "backbone": {"name": "efficientnet-lite0", "options": {"image_size": 32}},
    "protocols": {
        "lp": {},
        "ft": {"epochs": 1, "max_steps": 6, "batch_size": 32, "lr": 1e-4},
    },
    "seeds": [0, 1, 2],
    "safety": {"families": ["calibration", "distortion"]},
    "preflight": {"checks": []},
}


def bench_ray(repeats: int) -> None:
    """Studies of 6 and 12 runs on both executors: the slope of the time difference is Ray's
    cost per run, the intercept its fixed cost per study (features loaded before the fan-out,
    the task put in the object store); the cluster's start-up is timed on its own."""
    import ray
    import torch

    from safeadapt.data.features import FeatureCache
    from safeadapt.study import StudyConfig, run_study

    torch.set_num_threads(1)
    cache = FeatureCache(Path(tempfile.mkdtemp()) / "features")
    work = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    quiet = {"cache": cache, "show_progress": False, "log": lambda m: None}
    count = 0

    def once(executor: str, seeds: int) -> float:
        nonlocal count
        count += 1
        raw = copy.deepcopy(RUNS)
        raw.update(
            {
                "output": str(work / f"{executor}-{count}"),
                "executor": executor,
                "seeds": list(range(seeds)),
            }
        )
        from safeadapt import linear

        linear._MEMO.clear()  # no probe reused in-process from an earlier repeat (Ray: none)
        start = time.perf_counter()
        result = run_study(StudyConfig.from_dict(raw), report=False, **quiet)
        assert result.ran == len(result.runs)
        wall = time.perf_counter() - start
        inside = sum(r.wall_seconds for r in result.runs)
        return wall, wall - inside  # the runs' own work is noisy here; what is around it is not

    once("sequential", 1)  # warm: the feature cache and the imports
    once("ray", 1)  # warm: the workers
    sizes = (3, 6)  # seeds: 6 and 12 runs
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for seeds in sizes:
            for executor in ("sequential", "ray"):
                times.setdefault((executor, seeds), []).append(once(executor, seeds))
    ray.shutdown()
    per_protocol = len(RUNS["protocols"])
    runs = [per_protocol * s for s in sizes]
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    outside = {k: statistics.median(o for _, o in v) for k, v in times.items()}

    def fit(values, executor):
        y = [values[(executor, s)] for s in sizes]
        slope = (y[1] - y[0]) / (runs[1] - runs[0])
        return slope, y[0] - slope * runs[0]

    for key in sorted(wall):
        print(
            f"  {key[0]}, {per_protocol * key[1]} runs: {wall[key]:.2f} s, of which "
            f"{outside[key]:.2f} s outside the runs' own fit and evaluation"
        )
    run_seconds = fit(wall, "sequential")[0]
    wall_run = fit(wall, "ray")[0] - run_seconds
    wall_fixed = fit(wall, "ray")[1] - fit(wall, "sequential")[1]
    print(
        f"wall clock: ray {wall_run:+.3f} s a run ({wall_run / run_seconds:+.1%}) + "
        f"{wall_fixed:.2f} s a study (includes the runs' own noise)"
    )
    per_run = fit(outside, "ray")[0] - fit(outside, "sequential")[0]
    fixed = fit(outside, "ray")[1] - fit(outside, "sequential")[1]
    print(
        f"ray executor: {per_run:+.3f} s a run ({per_run / run_seconds:+.1%} of a "
        f"{run_seconds:.2f} s run) + {fixed:.2f} s a study (features before the fan-out, the "
        f"task in the object store), + {startup:.1f} s to start a local cluster; measured "
        f"outside the runs' own work (medians of {repeats}, alternated; 1 CPU, 1 thread)"
    )
    shutil.rmtree(work, ignore_errors=True)


def bench_eval(repeats: int) -> None:
    import yaml

    from safeadapt.paths import data_dir

    work = Path(tempfile.mkdtemp())
    raw = copy.deepcopy(RUNS)
    raw.update(
        {
            "task": {"builtin": "mnist", "max_train": 256, "max_eval": 1500},
            "protocols": {"ft": {"epochs": 1, "max_steps": 4, "batch_size": 32, "lr": 1e-4}},
            "seeds": [0],
            "safety": False,
        }
    )
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    modes = {
        "1 process, 2 threads": ([sys.executable, "-m", "safeadapt.cli"], "2"),
        "2 processes, 1 thread each": (
            [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
             "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "safeadapt.cli"],
            "1",
        ),
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in modes}
    for i in range(repeats):
        for name, (command, threads) in modes.items():
            home = work / f"home-{name[0]}-{i}"  # a cold feature cache each time
            home.mkdir(parents=True)
            (home / "data").symlink_to(data_dir())
            study = work / f"study-{name[0]}-{i}.yaml"
            study.write_text(yaml.safe_dump({**raw, "output": str(work / f"out-{name[0]}-{i}")}))
            env = {**os.environ, "SAFEADAPT_HOME": str(home), "OMP_NUM_THREADS": threads}
            start = time.perf_counter()
            subprocess.run(
                [*command, "run", str(study), "--no-progress"],
                env=env,
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            times[name].append(time.perf_counter() - start)
    one, two = (statistics.median(v) for v in times.values())
    print(
        f"FT study, 1,500-example splits, cold cache: 1 process {one:.1f} s, 2 processes "
        f"{two:.1f} s (ratio {two / one:.2f}; medians of {repeats}, alternated; whole commands)"
    )
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--what", nargs="+", default=["ray", "eval"], choices=["ray", "eval"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if "ray" in args.what:
        bench_ray(args.repeats)
    if "eval" in args.what:
        bench_eval(args.repeats)


if __name__ == "__main__":
    main()

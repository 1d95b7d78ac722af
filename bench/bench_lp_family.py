"""The LP family's cost against the one thing it cannot avoid: a study of ``lp``, ``lp-vat``,
``lp-udp`` and ``lp-soup`` (cold feature cache, safety suite and pre-flight off) against one
extraction pass over the same splits with the same backbone, at the default thread count.
Alternated, medians of repeats. Issue 15's goal: at most 1.1x.

    .venv/bin/python bench/bench_lp_family.py [--repeats 3] [--max-train 2000] [--max-eval 500]
    .venv/bin/python bench/bench_lp_family.py --only study       # one cold study, nothing else
    .venv/bin/python bench/bench_lp_family.py --only extraction  # one extraction pass

``--only`` runs one side once in its own process, for a whole-process timer run side by side
(e.g. ``/usr/bin/time -v``), on an idle machine or beside a load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=2000)
    parser.add_argument("--max-eval", type=int, default=500)
    parser.add_argument("--only", choices=["study", "extraction"])
    args = parser.parse_args()

    import torch

    from safeadapt.data.features import FeatureCache, extract_features
    from safeadapt.study import StudyConfig, run_study

    raw = {
        "name": "lp-family",
        "task": {"builtin": "vader-sentiment", "max_train": args.max_train,
                 "max_eval": args.max_eval},
        "backbone": {"name": "minilm", "options": {"max_length": 64}},
        "protocols": {"lp": {}, "lp-vat": {}, "lp-udp": {}, "lp-soup": {}},
        "safety": False,
        "preflight": {"checks": []},
    }  # fmt: skip
    work = Path(tempfile.mkdtemp())
    config = StudyConfig.from_dict({**raw, "output": str(work / "warm")})
    task = config.task.load()
    backbone = config.backbone.factory(task.modality)()
    splits = [s for s in task.splits(far=True).values() if len(s)]

    def extraction() -> float:
        start = time.perf_counter()
        for split in splits:
            extract_features(backbone, split, 64, show_progress=False)
        return time.perf_counter() - start

    def study(i: int) -> float:
        from safeadapt import linear

        linear._MEMO.clear()  # each repeat fits its own probes, as a fresh process would
        cold = FeatureCache(work / f"cache-{i}")
        config = StudyConfig.from_dict({**raw, "output": str(work / f"out-{i}")})
        start = time.perf_counter()
        run_study(config, cache=cold, show_progress=False, log=lambda m: None, report=False)
        return time.perf_counter() - start

    if args.only:  # one side, once: the process is what gets timed
        print(f"{args.only}: {(study(0) if args.only == 'study' else extraction()):.1f} s")
        return
    times: dict[str, list[float]] = {"extraction": [], "study": []}
    for i in range(args.repeats):
        times["extraction"].append(extraction())
        times["study"].append(study(i))
    a, b = statistics.median(times["study"]), statistics.median(times["extraction"])
    print(
        f"LP-family study (4 protocols) {a:.1f} s vs one extraction pass {b:.1f} s over "
        f"{sum(len(s) for s in splits)} texts: ratio {a / b:.2f} (torch threads "
        f"{torch.get_num_threads()}; medians of {args.repeats}, alternated)"
    )


if __name__ == "__main__":
    main()

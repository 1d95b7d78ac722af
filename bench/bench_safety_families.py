"""What the registered safety families cost on top of one run's evaluation.

Fits LP and a short FT of MiniLM on VADER (1,200 training snippets, 800 per evaluation split:
ID test, 3 OOD test and 3 OOD-val halves, plus the far-OOD tweets), then times
``evaluate_safety`` (prediction metrics on every split) with every registered family at its
defaults except the sampled ones -- attacks, corruptions, forgetting, which dwarf everything
else -- against the suite as it was before the new families (temperature scaling, MSP / energy
detection, distortion, groups), alternated, medians of repeats. Effective robustness fits its
LP trend once per process, so the first repeat pays it and the median does not. Also prints the
backbone passes per split the evaluation context made (goal: 1 per split for the adapted model,
whatever the families read).

The issue's goal: the new families add <= 10 % to evaluation time.

    .venv/bin/python bench/bench_safety_families.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.features import FeatureCache
    from safeadapt.protocols import FitContext, make_protocol
    from safeadapt.safety import FAMILIES, SafetyConfig, evaluate_safety

    torch.manual_seed(0)
    task = (
        load_builtin_task("vader-sentiment")
        .with_ood_val(0.5, seed=0)
        .subsample(max_train=1200, max_eval=800, seed=0)
    )

    def factory():
        return load_backbone("minilm", max_length=64)

    cache = FeatureCache("safeadapt-out/bench-families-cache")
    ctx = FitContext(task, factory, 0, cache, show_progress=False)
    fitted = {
        "lp": make_protocol("lp").fit(ctx),
        "ft": make_protocol("ft", {"epochs": 1, "max_steps": 20}).fit(ctx),
    }
    base = {"adversarial": False, "corruption": False, "forgetting": False}
    # before this issue: temperature scaling, MSP / energy detection, distortion and groups
    # (effective robustness's trend was fitted once per study: memoised here after the first run)
    before = {name: False for name in FAMILIES.names()}
    before.update(
        {
            "calibration": {},
            "detection": {"detectors": ["msp", "energy"]},
            "distortion": {},
            "groups": {},
        }
    )
    off = SafetyConfig(families=before)
    on = SafetyConfig(families=base)
    for name, result in fitted.items():
        times: dict[str, list[float]] = {"without": [], "with": []}
        passes = {}
        for _ in range(args.repeats):
            for label, cfg in (("without", off), ("with", on)):
                start = time.perf_counter()
                out = evaluate_safety(
                    result.model,
                    task,
                    factory,
                    cache=cache,
                    frozen_backbone=result.frozen_backbone,
                    config=cfg,
                )
                times[label].append(time.perf_counter() - start)
                passes = out.results["backbone_passes"]
        a, b = statistics.median(times["without"]), statistics.median(times["with"])
        print(
            f"{name}: evaluation with the former suite (temperature scaling, MSP / energy, distortion, "
            f"groups) {a:.2f} s, "
            f"with every family at its defaults {b:.2f} s: +{100 * (b - a) / a:.1f} % "
            f"(medians of {args.repeats})"
        )
        print(f"{name}: backbone passes per split: {passes}")


if __name__ == "__main__":
    main()

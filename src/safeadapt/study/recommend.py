"""From run records to the study summary: per-variant means ± std, the Pareto front, a pick.

The recommendation rule (stated in the report word for word):

1. Score each variant (protocol + grid point) by its mean over seeds on: ID accuracy (higher is
   better), mean OOD accuracy (higher), ID expected calibration error (lower), concept forgetting
   (higher, i.e. less forgotten), mean adversarial accuracy over the non-zero epsilons (higher)
   and mean corrupted accuracy (higher) -- each where measured.
2. The *Pareto front*: variants that no other variant beats on one criterion while matching or
   beating it on all the others.
3. Candidates: variants on the front whose ID accuracy is within ``id_tolerance`` (default one
   point) of the best ID accuracy -- we do not trade much in-distribution accuracy for safety.
4. Pick the candidate with the highest mean OOD accuracy (ID accuracy if the task has no OOD
   split); within half a point, prefer lower ECE, then less forgetting, then cheaper training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from safeadapt.metrics.effective import effective_robustness, fit_trend

# criterion -> (label, higher is better)
CRITERIA: dict[str, tuple[str, bool]] = {
    "id_accuracy": ("ID accuracy", True),
    "ood_accuracy": ("OOD accuracy (mean)", True),
    "ece": ("ECE (ID)", False),
    "forgetting": ("forgetting (after - before)", True),
    "robust_accuracy": ("adversarial accuracy (mean over eps > 0)", True),
    "corruption_accuracy": ("corrupted accuracy (mean)", True),
}
TIE = 0.005


def add_effective_robustness(
    runs: list[dict[str, Any]], points: list[dict[str, float]]
) -> dict[str, Any]:
    """Add ``effective_robustness`` ``{ood split: value}`` to each run (OOD accuracy above the
    probit-linear ID->OOD trend of the linear probes in ``points``); returns the trend."""
    ood = [k for k in points[0] if k.startswith("ood:")]
    trends = {k: fit_trend([p["test"] for p in points], [p[k] for p in points]) for k in ood}
    for run in runs:
        run["effective_robustness"] = {
            k: effective_robustness(
                run["metrics"]["test"]["accuracy"], run["metrics"][k]["accuracy"], t
            )
            for k, t in trends.items()
        }
    return {
        "baseline": "linear probes over C (cached features)",
        "points": points,
        "fits": {k: {"slope": t.slope, "intercept": t.intercept} for k, t in trends.items()},
    }


def _mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else None


def run_scores(run: dict[str, Any]) -> dict[str, float | None]:
    """One run's flat scores (``None`` where not measured)."""
    m = run["metrics"]
    s = run.get("safety") or {}
    ood = [k for k in m if k.startswith("ood:")]
    det = s.get("detection", {})
    adv = s.get("adversarial", {}).get("accuracy", {})
    grp = s.get("groups", {}).get("test", {})
    dist = s.get("distortion", {})
    scores: dict[str, float | None] = {
        "id_accuracy": m["test"]["accuracy"],
        "ood_accuracy": _mean([m[k]["accuracy"] for k in ood]),
        "ece": m["test"].get("ece"),
        "ece_temperature_scaled": s.get("splits_ts", {}).get("test", {}).get("ece"),
        "nll": m["test"].get("nll"),
        "brier": m["test"].get("brier"),
        "ood_auroc": _mean([v["msp_auroc"] for k, v in det.items() if k.startswith("ood:")]),
        "far_ood_auroc": _mean([v["msp_auroc"] for k, v in det.items() if k.startswith("far:")]),
        "distortion_id": dist.get("test", {}).get("l2"),
        "distortion_ood_ratio": _mean(
            [v.get("l2_ratio_to_id") for k, v in dist.items() if k != "test"]
        ),
        "robust_accuracy": _mean([a for e, a in adv.items() if float(e) > 0]),
        "corruption_accuracy": s.get("corruption", {}).get("mean_accuracy"),
        "corruption_drop": s.get("corruption", {}).get("relative_drop"),
        "forgetting": s.get("forgetting", {}).get("mean_delta"),
        "worst_group_accuracy": grp.get("worst_group_accuracy"),
        "group_gap": grp.get("accuracy_gap"),
        "effective_robustness": _mean(list(run.get("effective_robustness", {}).values())),
        "fit_seconds": run["fit_seconds"],
        "eval_seconds": run["eval_seconds"],
        "trainable_parameters": float(run["cost"]["trainable_parameters"]),
        "peak_rss_mb": max(run["cost"]["fit"]["peak_rss_mb"], run["cost"]["eval"]["peak_rss_mb"]),
    }
    for k in ood:
        scores[f"accuracy:{k}"] = m[k]["accuracy"]
    return scores


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant, in first-seen order: ``{variant, protocol, seeds, scores: {k: {mean, std}}}``."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_variant.setdefault(r["run"]["variant"], []).append(r)
    out = []
    for variant, group in by_variant.items():
        per_run = [run_scores(r) for r in group]
        keys = list(dict.fromkeys(k for s in per_run for k in s))
        scores = {}
        for k in keys:
            vals = [s.get(k) for s in per_run if s.get(k) is not None]
            vals = [v for v in vals if not math.isnan(v)]
            if vals:
                scores[k] = {
                    "mean": float(np.mean(vals)),
                    "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                    "n": len(vals),
                }
        out.append(
            {
                "variant": variant,
                "protocol": group[0]["run"]["protocol"],
                "seeds": [r["run"]["seed"] for r in group],
                "scores": scores,
            }
        )
    return out


def pareto_front(variants: list[dict[str, Any]], criteria: Sequence[str]) -> list[str]:
    """Names of the variants no other variant dominates on ``criteria`` (means over seeds)."""

    def vec(v: dict[str, Any]) -> list[float]:
        return [v["scores"][c]["mean"] * (1 if CRITERIA[c][1] else -1) for c in criteria]

    vecs = {v["variant"]: vec(v) for v in variants}
    front = []
    for name, a in vecs.items():
        dominated = any(
            all(x >= y for x, y in zip(b, a, strict=True))
            and any(x > y for x, y in zip(b, a, strict=True))
            for other, b in vecs.items()
            if other != name
        )
        if not dominated:
            front.append(name)
    return front


def recommend(variants: list[dict[str, Any]], id_tolerance: float = 0.01) -> dict[str, Any]:
    """Apply the module's rule; returns the pick, the front, the candidates and the reason."""
    criteria = [c for c in CRITERIA if all(c in v["scores"] for v in variants)]
    front = pareto_front(variants, criteria)
    best_id = max(v["scores"]["id_accuracy"]["mean"] for v in variants)
    by_name = {v["variant"]: v for v in variants}
    candidates = [
        n for n in front if by_name[n]["scores"]["id_accuracy"]["mean"] >= best_id - id_tolerance
    ]
    if not candidates:  # cannot happen (the best-ID variant is on the front), kept for safety
        candidates = front
    target = "ood_accuracy" if "ood_accuracy" in criteria else "id_accuracy"

    def mean(name: str, key: str, default: float = 0.0) -> float:
        return by_name[name]["scores"].get(key, {"mean": default})["mean"]

    top = max(mean(n, target) for n in candidates)
    tied = [n for n in candidates if mean(n, target) >= top - TIE]
    pick = sorted(
        tied,
        key=lambda n: (mean(n, "ece", 1.0), -mean(n, "forgetting"), mean(n, "fit_seconds")),
    )[0]
    s = by_name[pick]["scores"]
    words = [
        f"{pick} is on the Pareto front of {len(front)} of {len(variants)} variants "
        f"({', '.join(CRITERIA[c][0] for c in criteria)})",
        f"its ID accuracy {s['id_accuracy']['mean']:.3f} is within {id_tolerance:.3f} of the best "
        f"({best_id:.3f})",
    ]
    if target == "ood_accuracy":
        words.append(
            f"it has the highest mean OOD accuracy among those candidates "
            f"({s['ood_accuracy']['mean']:.3f})"
        )
    if len(tied) > 1:
        words.append(
            f"{len(tied)} candidates were within {TIE:.3f} on that; it has the lowest ECE "
            f"({s.get('ece', {}).get('mean', float('nan')):.3f}) among them"
        )
    if "forgetting" in s:
        words.append(f"forgetting on reference tasks {s['forgetting']['mean']:+.3f}")
    return {
        "variant": pick,
        "criteria": criteria,
        "pareto_front": front,
        "candidates": candidates,
        "reason": "; ".join(words) + ".",
        "rule": __doc__.split("The recommendation rule", 1)[1].split(":", 1)[1].strip(),
    }


def summarize(
    runs: list[dict[str, Any]], config, task, trend: dict[str, Any] | None
) -> dict[str, Any]:
    variants = aggregate(runs)
    return {
        "study": config.name,
        "task": task.name,
        "modality": task.modality,
        "backbone": config.backbone.resolve(task.modality).name,
        "notes": list(task.notes),
        "sizes": {k: len(v) for k, v in task.splits(far=True).items()},
        "seeds": list(config.seeds),
        "splits": list(task.eval_splits()),
        "variants": variants,
        "recommendation": recommend(variants, config.recommend.id_tolerance),
        "trend": trend,
        "safety": None if config.safety is None else _safety_facts(runs),
    }


def _safety_facts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the safety numbers were measured on (from the first run that has them)."""
    for r in runs:
        s = r.get("safety") or {}
        if s:
            return {
                "adversarial": {
                    k: v for k, v in s.get("adversarial", {}).items() if k != "accuracy"
                },
                "corruption_n": s.get("corruption", {}).get("n"),
                "reference_tasks": sorted(s.get("forgetting", {}).get("tasks", {})),
            }
    return {}

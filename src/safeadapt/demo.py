"""``safeadapt demo``: a study of LP, FT and LP-FT on the embedded default model and data.

It is an ordinary study (``safeadapt.study``) with CPU budgets: the default text demo stays
under 10 minutes on 2 CPU cores; the report says what was cut. Console tables live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from safeadapt.backbones import DEFAULT_BACKBONE
from safeadapt.data import DEFAULT_TASK
from safeadapt.data.features import FeatureCache
from safeadapt.errors import InvalidConfig
from safeadapt.evaluation import SafetyConfig
from safeadapt.protocols import make_protocol
from safeadapt.study.config import BackboneSpec, ProtocolEntry, StudyConfig, TaskSpec
from safeadapt.study.runner import StudyResult, run_study


@dataclass(frozen=True)
class DemoBudget:
    max_train: int
    max_eval: int
    backbone_options: dict[str, Any]
    protocols: dict[str, dict[str, Any]]
    safety: SafetyConfig


def budget(modality: str, quick: bool) -> DemoBudget:
    """The demo's scaled-down settings (papers use full data and ~10-20 epochs)."""
    if modality == "text":
        epochs = 1 if quick else 2
        train = {"epochs": epochs, "batch_size": 32, "eval_batch_size": 128}
        return DemoBudget(
            max_train=300 if quick else 1200,
            max_eval=200 if quick else 800,
            backbone_options={"max_length": 48 if quick else 64},
            protocols={
                "lp": {},
                "ft": {**train, "lr": 3e-5, "head_lr": 1e-3},
                "lp-ft": {**train, "lr": 1e-5},
            },
            # MiniLM forward+backward is the cost of an embedding attack: keep it small on CPU
            safety=SafetyConfig(
                adv_eps=(0.0, 0.02, 0.1),
                adv_steps=5,
                adv_max_examples=32 if quick else 64,
                corruption_max_examples=48 if quick else 120,
                reference_max_train=150 if quick else 400,
                reference_max_eval=100 if quick else 200,
            ),
        )
    if modality == "image":
        epochs = 1 if quick else 2
        train = {"epochs": epochs, "batch_size": 64, "eval_batch_size": 256}
        return DemoBudget(
            max_train=300 if quick else 1500,
            max_eval=200 if quick else 800,
            backbone_options={"image_size": 64},
            protocols={
                "lp": {},
                "ft": {**train, "lr": 3e-4, "head_lr": 3e-3},
                "lp-ft": {**train, "lr": 1e-4},
            },
            safety=SafetyConfig(
                adv_eps=(0.0, 1 / 255, 4 / 255),
                adv_steps=10,
                adv_max_examples=48 if quick else 128,
                corruption_max_examples=64 if quick else 200,
                reference_max_train=200 if quick else 600,
                reference_max_eval=100 if quick else 400,
            ),
        )
    raise InvalidConfig(f"'modality' must be 'text' or 'vision'/'image'; got {modality!r}.")


def demo_study(
    modality: str = "text",
    quick: bool = False,
    out_dir: str | Path = "safeadapt-out",
    seeds: tuple[int, ...] = (0,),
    protocols: tuple[str, ...] = ("lp", "ft", "lp-ft"),
    max_train: int | None = None,
    safety: bool = True,
) -> StudyConfig:
    """The demo as a study config: default task and backbone of ``modality``, CPU budgets."""
    modality = "image" if modality in ("vision", "image") else modality
    b = budget(modality, quick)
    label = "vision" if modality == "image" else "text"
    return StudyConfig(
        name=f"demo-{label}",
        task=TaskSpec(
            builtin=DEFAULT_TASK[modality], max_train=max_train or b.max_train, max_eval=b.max_eval
        ),
        backbone=BackboneSpec(DEFAULT_BACKBONE[modality], dict(b.backbone_options)),
        protocols=tuple(ProtocolEntry(p, p, dict(b.protocols.get(p, {}))) for p in protocols),
        seeds=tuple(seeds),
        safety=b.safety if safety else None,
        output=str(Path(out_dir) / f"demo-{label}"),
    )


def run_demo(
    modality: str = "text",
    quick: bool = False,
    out_dir: str | Path = "safeadapt-out",
    seeds: tuple[int, ...] = (0,),
    protocols: tuple[str, ...] = ("lp", "ft", "lp-ft"),
    max_train: int | None = None,
    safety: bool = True,
    cache: FeatureCache | None = None,
    show_progress: bool = True,
    log=print,
) -> StudyResult:
    """Run the demo study; writes ``<out_dir>/demo-<text|vision>/`` (report.html, results.csv,
    summary.json, one folder per run). Rerunning resumes."""
    config = demo_study(modality, quick, out_dir, seeds, protocols, max_train, safety)
    for entry in config.protocols:  # fail on a bad name before any data or model loads
        make_protocol(entry.protocol, entry.settings)
    log(f"demo study {config.name}: scaled down for a CPU; budgets in the report")
    return run_study(config, cache=cache, show_progress=show_progress, log=lambda m: log(escape(m)))


def _name(record: dict[str, Any]) -> str:
    """A row label, escaped: rich would read a variant's ``[lr=1e-05]`` as markup and drop it."""
    return escape(record["protocol"])


def tables_input(result: StudyResult) -> dict[str, Any]:
    """What the console tables read: task, backbone and the run records."""
    return {
        "task": result.summary["task"],
        "backbone": result.summary["backbone"],
        "runs": [{**r, "protocol": r["run"]["variant"]} for r in result.runs],
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def safety_tables(results: dict[str, Any]) -> list:
    """The safety suite as rich Tables: calibration / detection / distortion / attacks / cost,
    then corruption, forgetting, groups, far-OOD detection and effective robustness."""
    first = safety_table(results)
    return [t for t in (first, robustness_table(results)) if t is not None]


def robustness_table(results: dict[str, Any]):
    from rich.table import Table

    runs = [r for r in results["runs"] if r.get("safety")]
    if not runs:
        return None
    table = Table(
        title=escape(f"{results['task']}: corruption, forgetting, groups, far-OOD"),
        caption="corr: mean accuracy over corruption kinds x severities (drop relative to clean); "
        "forget: reference-task probe accuracy after - before; worst/gap: group accuracy on ID "
        "test; EO: equalised-odds difference; far AUROC: MSP vs far-OOD set; eff.rob: OOD acc "
        "above the LP trend, mean over OOD splits",
    )
    cols = ["protocol", "corr acc", "corr drop", "forget", "worst grp", "grp gap", "EO diff"]
    cols += ["far AUROC", "eff.rob"]
    for c in cols:
        table.add_column(c, justify="left" if c == "protocol" else "right")
    for r in runs:
        s = r["safety"]
        corr = s.get("corruption", {})
        forget = s.get("forgetting", {})
        grp = s.get("groups", {}).get("test", {})
        eo = grp.get(
            "equalized_odds_difference", grp.get("equalized_odds_difference_max_over_classes")
        )
        far = [v["msp_auroc"] for k, v in s.get("detection", {}).items() if k.startswith("far:")]
        er = list(r.get("effective_robustness", {}).values())
        table.add_row(
            _name(r),
            _fmt(corr.get("mean_accuracy")),
            _fmt(corr.get("relative_drop"), ".1%"),
            _fmt(forget.get("mean_delta"), "+.3f"),
            _fmt(grp.get("worst_group_accuracy")),
            _fmt(grp.get("accuracy_gap")),
            _fmt(eo),
            _fmt(_mean(far) if far else None),
            _fmt(_mean(er) if er else None, "+.3f"),
        )
    return table


def safety_table(results: dict[str, Any]):
    """A rich Table of the safety suite: calibration, detection, distortion, attack, cost."""
    from rich.table import Table

    runs = [r for r in results["runs"] if r.get("safety")]
    if not runs:
        return None
    adv_eps = list(runs[0]["safety"].get("adversarial", {}).get("accuracy", {}))
    table = Table(
        title=escape(f"{results['task']}: safety on ID test"),
        caption="AUROC / FPR95: max-softmax OOD detection, mean over OOD splits; dist: feature "
        "L2 change vs pretrained; PGD: robust accuracy at eps; RSS: peak MB",
    )
    cols = [
        "protocol",
        "ECE",
        "ECE-TS",
        "NLL",
        "Brier",
        "AUROC",
        "FPR95",
        "dist ID",
        "dist OOD/ID",
        *(f"PGD {float(e):.3g}" for e in adv_eps[1:]),
        "params",
        "RSS MB",
    ]
    for c in cols:
        table.add_column(c, justify="left" if c == "protocol" else "right")
    for r in runs:
        s, m = r["safety"], r["metrics"]["test"]
        det = s.get("detection", {})
        dist = s.get("distortion", {})
        ratios = [v["l2_ratio_to_id"] for k, v in dist.items() if k != "test"]
        ood_det = [d for k, d in det.items() if k.startswith("ood:")]
        adv = s.get("adversarial", {}).get("accuracy", {})
        table.add_row(
            _name(r),
            _fmt(m.get("ece")),
            _fmt(s.get("splits_ts", {}).get("test", {}).get("ece")),
            _fmt(m.get("nll")),
            _fmt(m.get("brier")),
            _fmt(_mean([d["msp_auroc"] for d in ood_det]) if ood_det else None),
            _fmt(_mean([d["msp_fpr95"] for d in ood_det]) if ood_det else None),
            _fmt(dist.get("test", {}).get("l2")),
            _fmt(_mean(ratios) if ratios else None, ".2f"),
            *(_fmt(adv.get(e)) for e in adv_eps[1:]),
            f"{r['cost']['trainable_parameters']:,}",
            f"{max(r['cost']['fit']['peak_rss_mb'], r['cost']['eval']['peak_rss_mb']):.0f}",
        )
    return table


def results_table(results: dict[str, Any]):
    """A rich Table: protocol, ID accuracy, each OOD accuracy, fit and wall time."""
    from rich.table import Table

    runs = results["runs"]
    splits = list(runs[0]["metrics"]) if runs else []
    title = escape(f"{results['task']} / {results['backbone']} (accuracy)")
    table = Table(title=title)
    table.add_column("protocol")
    for s in splits:
        table.add_column("ID test" if s == "test" else s.replace("ood:", "OOD "), justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("wall s", justify="right")
    for r in runs:
        cells = [f"{r['metrics'][s]['accuracy']:.3f}" for s in splits]
        table.add_row(_name(r), *cells, f"{r['fit_seconds']:.1f}", f"{r['wall_seconds']:.1f}")
    return table


def interval_table(summary: dict[str, Any]):
    """Per variant: the selection scores (validation) and the reported accuracies (test) with
    their 95 % intervals."""
    from rich.table import Table

    keys = [
        ("val_accuracy", "ID val"),
        ("ood_val_accuracy", "OOD val"),
        ("id_accuracy", "ID test"),
        ("ood_accuracy", "OOD test (mean)"),
    ]
    table = Table(
        title=escape(f"{summary['task']}: accuracy with 95 % intervals"),
        caption="val columns drive the choices; test columns are scored once, for the report",
    )
    table.add_column("variant")
    keys = [(k, h) for k, h in keys if any(k in v["scores"] for v in summary["variants"])]
    for _, header in keys:
        table.add_column(header, justify="right")
    for v in summary["variants"]:
        cells = []
        for key, _ in keys:
            s = v["scores"].get(key)
            if s is None:
                cells.append("-")
            elif "ci_low" in s:
                cells.append(f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
            else:
                cells.append(f"{s['mean']:.3f}")
        table.add_row(escape(v["variant"]), *cells)
    return table

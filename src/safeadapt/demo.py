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
from safeadapt.protocols import make_protocol
from safeadapt.safety import SafetyConfig
from safeadapt.study.config import StudyConfig
from safeadapt.study.runner import StudyResult, run_study
from safeadapt.study.specs import BackboneSpec, ProtocolEntry, TaskSpec


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
            safety=_budgets(
                (0.0, 0.02, 0.1), 5, (32, 64), (48, 120), (150, 400), (100, 200), quick
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
            safety=_budgets(
                (0.0, 1 / 255, 4 / 255), 10, (48, 128), (64, 200), (200, 600), (100, 400), quick
            ),
        )
    raise InvalidConfig(f"'modality' must be 'text' or 'vision'/'image'; got {modality!r}.")


def _budgets(
    eps: tuple[float, ...],
    steps: int,
    attacked: tuple[int, int],
    corrupted: tuple[int, int],
    ref_train: tuple[int, int],
    ref_eval: tuple[int, int],
    quick: bool,
) -> SafetyConfig:
    """The suite's sampled budgets; each pair is (quick, full)."""
    i = 0 if quick else 1
    return SafetyConfig(
        families={
            "adversarial": {"eps": eps, "steps": steps, "max_examples": attacked[i]},
            "corruption": {"max_examples": corrupted[i]},
            "forgetting": {"max_train": ref_train[i], "max_eval": ref_eval[i]},
        }
    )


def demo_study(
    modality: str = "text",
    quick: bool = False,
    out_dir: str | Path = "safeadapt-out",
    seeds: tuple[int, ...] = (0,),
    protocols: tuple[str, ...] = ("lp", "ft", "lp-ft"),
    max_train: int | None = None,
    safety: bool = True,
    max_eval: int | None = None,
) -> StudyConfig:
    """The demo as a study config: default task and backbone of ``modality``, CPU budgets."""
    modality = "image" if modality in ("vision", "image") else modality
    b = budget(modality, quick)
    label = "vision" if modality == "image" else "text"
    return StudyConfig(
        name=f"demo-{label}",
        task=TaskSpec(
            builtin=DEFAULT_TASK[modality],
            max_train=b.max_train if max_train is None else max_train,
            max_eval=b.max_eval if max_eval is None else max_eval,
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
    max_eval: int | None = None,
    show_progress: bool = True,
    log=print,
) -> StudyResult:
    """Run the demo study; writes ``<out_dir>/demo-<text|vision>/`` (report.html, results.csv,
    summary.json, one folder per run). Rerunning resumes."""
    config = demo_study(modality, quick, out_dir, seeds, protocols, max_train, safety, max_eval)
    for entry in config.protocols:  # fail on a bad name before any data or model loads
        make_protocol(entry.protocol, entry.settings)
    log(f"demo study {config.name}: scaled down for a CPU; budgets in the report")
    return run_study(config, cache=cache, show_progress=show_progress, log=lambda m: log(escape(m)))

"""The report's figures: each a pure function of run records / summary -> PNG bytes (or None
when the study did not measure what the figure shows). Matplotlib, Agg backend, no display.

The study's own figures (cost, WiSE-FT's curve) are here; every safety family draws its own
(``Family.figure``), added below as ``family_<name>``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from safeadapt.results import RunRecord, StudySummary
from safeadapt.safety.figures import colors as _colors
from safeadapt.safety.figures import plt as _plt
from safeadapt.safety.figures import png as _png

Runs = Sequence[RunRecord]


def _variants(runs: Runs) -> list[str]:
    return list(dict.fromkeys(r.variant for r in runs))


def _by_variant(runs: Runs) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for r in runs:
        out.setdefault(r.variant, []).append(r)
    return out


def cost(runs: Runs, summary: StudySummary) -> bytes | None:
    """Cost vs accuracy: fit seconds (log scale) vs ID accuracy; marker area ~ trainable params."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    colors = _colors(_variants(runs))
    params = [max(1, r.cost.trainable_parameters if r.cost else 0) for r in runs]
    scale = 300 / np.log10(max(params) + 10)
    for r, p in zip(runs, params, strict=True):
        v = r.variant
        ax.scatter(
            r.fit_seconds,
            r.test.accuracy,
            s=20 + scale * np.log10(p),
            color=colors[v],
            label=v,
            edgecolor="black",
            linewidth=0.5,
            alpha=0.8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds (log)")
    ax.set_ylabel("ID test accuracy")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def wise_curve(runs: Runs, summary: StudySummary) -> bytes | None:
    """WiSE-FT's alpha curve (first seed of each WiSE-FT variant): ID-validation accuracy, on
    which alpha is chosen (marked), and OOD-validation accuracy at every alpha, shown beside it
    and never used for the choice. alpha = 0 is the pretrained backbone with its LP head,
    alpha = 1 the fine-tuned model."""
    curves = {v: rs[0].fit for v, rs in _by_variant(runs).items() if rs[0].fit.alpha_curve}
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    colors = _colors(list(curves))
    for v, fit in curves.items():
        curve = fit.alpha_curve
        alphas = [p.alpha for p in curve]
        ax.plot(
            alphas,
            [p.val_accuracy for p in curve],
            "-o",
            color=colors[v],
            label=f"{v}: ID val",
            ms=3,
        )
        for name in curve[0].ood_val:
            ax.plot(alphas, [p.ood_val[name] for p in curve], "--", color=colors[v],
                    label=f"{v}: ood-val:{name}")  # fmt: skip
        ax.axvline(fit.alpha, color=colors[v], alpha=0.4, linewidth=3)
    ax.set_xlabel("alpha (0 = pretrained + LP head, 1 = fine-tuned)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


FIGURES: dict[str, tuple[str, Callable[[Runs, StudySummary], bytes | None]]] = {
    "cost": ("Cost vs accuracy", cost),
    "wise_curve": (
        "WiSE-FT: accuracy along the interpolation (alpha chosen on ID val)",
        wise_curve,
    ),
}


def _family_figure(name: str) -> Callable[[Runs, StudySummary], bytes | None]:
    """A registered safety family's figure over the study's variants (every seed's result)."""
    from safeadapt.safety import family

    def draw(runs: Runs, summary: StudySummary) -> bytes | None:
        fam = family(name)
        seen: dict[str, list[Any]] = {}
        for r in runs:
            result = r.safety.get(name)
            if result is not None:
                seen.setdefault(r.variant, []).append(fam.read(result))
        return fam.figure(seen, summary) if seen else None

    draw.__doc__ = family(name).figure.__doc__
    return draw


def _add_family_figures() -> None:
    from safeadapt.safety import FAMILIES, Family

    study = dict(FIGURES)  # the families' figures first (registration order), then the study's
    FIGURES.clear()
    for name in FAMILIES.in_order():
        cls = FAMILIES.get(name)
        if cls.figure is not Family.figure:
            FIGURES[f"family_{name}"] = (cls.title, _family_figure(name))
    FIGURES.update(study)


_add_family_figures()

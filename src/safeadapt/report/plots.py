"""The report's figures: each a pure function of run records / summary -> PNG bytes (or None
when the study did not measure what the figure shows). Matplotlib, Agg backend, no display."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from safeadapt.safety.figures import bars as _bars
from safeadapt.safety.figures import colors as _colors
from safeadapt.safety.figures import plt as _plt
from safeadapt.safety.figures import png as _png

Runs = list[dict[str, Any]]


def _variants(runs: Runs) -> list[str]:
    return list(dict.fromkeys(r["run"]["variant"] for r in runs))


def _by_variant(runs: Runs) -> dict[str, Runs]:
    out: dict[str, Runs] = {}
    for r in runs:
        out.setdefault(r["run"]["variant"], []).append(r)
    return out


def id_vs_ood(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """ID vs OOD accuracy per run, one panel per OOD split, with the LP trend (effective
    robustness = height above the line); error bars: 95 % intervals of each variant's mean."""
    ood = [s for s in summary["splits"] if s.startswith("ood:")]
    if not ood:
        return None
    from scipy.stats import norm

    plt = _plt()
    fig, axes = plt.subplots(1, len(ood), figsize=(4.2 * len(ood), 3.8), squeeze=False)
    colors = _colors(_variants(runs))
    trend = summary.get("trend") or {}
    for ax, split in zip(axes[0], ood, strict=True):
        for r in runs:
            v = r["run"]["variant"]
            ax.scatter(
                r["metrics"]["test"]["accuracy"],
                r["metrics"][split]["accuracy"],
                color=colors[v],
                label=v,
                s=40,
                edgecolor="black",
                linewidth=0.5,
            )
        for v in summary.get("variants", []):  # 95 % intervals of each variant's mean
            sx, sy = v["scores"].get("id_accuracy", {}), v["scores"].get(f"accuracy:{split}", {})
            if "ci_low" in sx and "ci_low" in sy:
                ax.errorbar(
                    sx["mean"],
                    sy["mean"],
                    xerr=[[sx["mean"] - sx["ci_low"]], [sx["ci_high"] - sx["mean"]]],
                    yerr=[[sy["mean"] - sy["ci_low"]], [sy["ci_high"] - sy["mean"]]],
                    color=colors.get(v["variant"], "black"),
                    alpha=0.6,
                    capsize=2,
                    linewidth=1,
                )
        if trend:
            pts = trend["points"]
            ax.scatter(
                [p["test"] for p in pts],
                [p[split] for p in pts],
                marker="x",
                color="grey",
                label="LP over C",
            )
            fit = trend["fits"][split]
            xs = np.linspace(
                min(
                    p["test"]
                    for p in pts + [{"test": r["metrics"]["test"]["accuracy"]} for r in runs]
                )
                - 0.02,
                max(
                    p["test"]
                    for p in pts + [{"test": r["metrics"]["test"]["accuracy"]} for r in runs]
                )
                + 0.02,
                50,
            ).clip(1e-3, 1 - 1e-3)
            ax.plot(
                xs,
                norm.cdf(fit["slope"] * norm.ppf(xs) + fit["intercept"]),
                color="grey",
                linestyle="--",
                label="LP trend",
            )
        ax.set_xlabel("ID test accuracy")
        ax.set_ylabel(f"{split.removeprefix('ood:')} accuracy")
        ax.set_title(split.removeprefix("ood:"))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    fig.legend(
        unique.values(),
        unique.keys(),
        loc="lower center",
        ncol=min(6, len(unique)),
        bbox_to_anchor=(0.5, -0.08),
        frameon=False,
    )
    return _png(fig)


def reliability(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """Reliability diagram (ID test, first seed of each variant): accuracy vs confidence per bin."""
    first = {v: rs[0] for v, rs in _by_variant(runs).items()}
    data = {v: r.get("safety", {}).get("reliability", {}).get("test") for v, r in first.items()}
    data = {k: v for k, v in data.items() if v}
    if not data:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(data), figsize=(3.2 * len(data), 3.2), squeeze=False)
    for ax, (v, rel) in zip(axes[0], data.items(), strict=True):
        n = len(rel["count"])
        edges = np.linspace(0, 1, n + 1)
        mask = np.asarray(rel["count"]) > 0
        ax.bar(
            edges[:-1][mask],
            np.asarray(rel["accuracy"])[mask],
            width=1 / n,
            align="edge",
            color="#4c72b0",
            edgecolor="white",
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.scatter(
            np.asarray(rel["confidence"])[mask],
            np.asarray(rel["accuracy"])[mask],
            color="#dd8452",
            s=12,
            zorder=3,
            label="bin mean confidence",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(v)
        ax.set_xlabel("confidence")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    return _png(fig)


def _line_plot(
    runs: Runs,
    get: Callable[[dict[str, Any]], dict[float, float] | None],
    xlabel: str,
    ylabel: str,
    logx: bool = False,
) -> bytes | None:
    series = {}
    for v, rs in _by_variant(runs).items():
        curves = [c for c in (get(r) for r in rs) if c]
        if curves:
            xs = sorted(curves[0])
            series[v] = (xs, [float(np.mean([c[x] for c in curves])) for x in xs])
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    colors = _colors(list(series))
    for v, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=v, color=colors[v])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("symlog", linthresh=min(x for xs, _ in series.values() for x in xs if x > 0))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def robust_accuracy(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """Adversarial accuracy vs epsilon (mean over seeds)."""

    def get(r):
        acc = r.get("safety", {}).get("adversarial", {}).get("accuracy")
        return {float(k): v for k, v in acc.items()} if acc else None

    space = (summary.get("safety") or {}).get("adversarial", {}).get("space", "")
    return _line_plot(runs, get, f"epsilon ({space})", "robust accuracy (ID test sample)")


def corruption(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """Accuracy vs corruption severity, averaged over corruption kinds (severity 0 = clean)."""

    def get(r):
        c = r.get("safety", {}).get("corruption")
        if not c:
            return None
        sev = sorted({int(s) for per in c["accuracy"].values() for s in per})
        out = {0.0: c["clean_accuracy"]}
        for s in sev:
            out[float(s)] = float(np.mean([per[str(s)] for per in c["accuracy"].values()]))
        return out

    return _line_plot(runs, get, "corruption severity (0 = clean)", "accuracy (mean over kinds)")


def _mean_by_variant(runs: Runs, get: Callable[[dict[str, Any]], dict[str, float] | None]):
    out = {}
    for v, rs in _by_variant(runs).items():
        vals = [d for d in (get(r) for r in rs) if d]
        if vals:
            out[v] = {k: float(np.mean([d[k] for d in vals if k in d])) for k in vals[0]}
    return out


def forgetting(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """Concept forgetting per reference task: probe accuracy after minus before (0 = kept)."""
    data = _mean_by_variant(
        runs,
        lambda r: {
            k: v["delta"]
            for k, v in r.get("safety", {}).get("forgetting", {}).get("tasks", {}).items()
        },
    )
    return _bars(data, "probe accuracy change", zero_line=True) if data else None


def cost(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """Cost vs accuracy: fit seconds (log scale) vs ID accuracy; marker area ~ trainable params."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    colors = _colors(_variants(runs))
    params = [max(1, r["cost"]["trainable_parameters"]) for r in runs]
    scale = 300 / np.log10(max(params) + 10)
    for r, p in zip(runs, params, strict=True):
        v = r["run"]["variant"]
        ax.scatter(
            r["fit_seconds"],
            r["metrics"]["test"]["accuracy"],
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


def wise_curve(runs: Runs, summary: dict[str, Any]) -> bytes | None:
    """WiSE-FT's alpha curve (first seed of each WiSE-FT variant): ID-validation accuracy, on
    which alpha is chosen (marked), and OOD-validation accuracy at every alpha, shown beside it
    and never used for the choice. alpha = 0 is the pretrained backbone with its LP head,
    alpha = 1 the fine-tuned model."""
    curves = {
        v: rs[0]["info"] for v, rs in _by_variant(runs).items() if "alpha_curve" in rs[0]["info"]
    }
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    colors = _colors(list(curves))
    for v, info in curves.items():
        curve = info["alpha_curve"]
        alphas = [p["alpha"] for p in curve]
        ax.plot(
            alphas,
            [p["val_accuracy"] for p in curve],
            "-o",
            color=colors[v],
            label=f"{v}: ID val",
            ms=3,
        )
        for key in [k for k in curve[0] if k.startswith("ood-val:")]:
            ax.plot(alphas, [p[key] for p in curve], "--", color=colors[v], label=f"{v}: {key}")
        ax.axvline(info["alpha"], color=colors[v], alpha=0.4, linewidth=3)
    ax.set_xlabel("alpha (0 = pretrained + LP head, 1 = fine-tuned)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


FIGURES: dict[str, tuple[str, Callable[[Runs, dict[str, Any]], bytes | None]]] = {
    "id_vs_ood": ("ID vs OOD accuracy, with the linear-probe trend", id_vs_ood),
    "reliability": ("Reliability diagrams (ID test)", reliability),
    "robust_accuracy": ("Adversarial accuracy vs epsilon", robust_accuracy),
    "corruption": ("Accuracy under corruptions", corruption),
    "forgetting": ("Concept forgetting on reference tasks", forgetting),
    "cost": ("Cost vs accuracy", cost),
    "wise_curve": (
        "WiSE-FT: accuracy along the interpolation (alpha chosen on ID val)",
        wise_curve,
    ),
}


def _family_figure(name: str) -> Callable[[Runs, dict[str, Any]], bytes | None]:
    """A registered safety family's figure over the study's variants (every seed's result)."""
    from safeadapt.safety import family

    def draw(runs: Runs, summary: dict[str, Any]) -> bytes | None:
        seen: dict[str, list[Any]] = {}
        for r in runs:
            result = (r.get("safety") or {}).get(name)
            if result is not None:
                seen.setdefault(r["run"]["variant"], []).append(result)
        return family(name).figure(seen) if seen else None

    draw.__doc__ = family(name).figure.__doc__
    return draw


def _add_family_figures() -> None:
    from safeadapt.safety import FAMILIES, Family

    for name in FAMILIES.names():
        cls = FAMILIES.get(name)
        if cls.figure is not Family.figure:
            FIGURES[f"family_{name}"] = (cls.title, _family_figure(name))


_add_family_figures()

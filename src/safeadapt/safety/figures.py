"""Plot helpers shared by the safety families' figures and the report (Matplotlib, Agg)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot

    return pyplot


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt().close(fig)
    return buf.getvalue()


def colors(names: list[str]) -> dict[str, Any]:
    cmap = plt().get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def bars(
    data: dict[str, dict[str, float]],
    ylabel: str,
    zero_line: bool = False,
    hline: float | None = None,
    ylim: tuple[float, float] | None = None,
) -> bytes:
    """Grouped bars: ``{variant: {category: value}}``, each bar's value written on it (a
    ``ylim`` that starts above 0 would hide short bars: the axis always includes 0)."""
    p = plt()
    variants = list(data)
    cats = list(dict.fromkeys(c for d in data.values() for c in d))
    width = 0.8 / max(1, len(variants))
    fig, ax = p.subplots(figsize=(max(4.5, 1.3 * len(cats) + 2), 3.6))
    palette = colors(variants)
    x = np.arange(len(cats))
    for i, v in enumerate(variants):
        vals = [data[v].get(c, np.nan) for c in cats]
        drawn = ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=v, color=palette[v])
        ax.bar_label(drawn, fmt="%.3g", fontsize=6, padding=1)
    ax.set_xticks(x)
    ax.set_xticklabels(cats, rotation=15)
    ax.set_ylabel(ylabel)
    if zero_line:
        ax.axhline(0, color="black", linewidth=0.8)
    if hline is not None:
        ax.axhline(hline, color="#333", linestyle="--", linewidth=1)
    if ylim is not None:
        ax.set_ylim(min(ylim[0], 0.0), max(ylim[1], 0.0))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return png(fig)


def mean_over_seeds(results: dict[str, list[Any]], get) -> dict[str, dict[str, float]]:
    """``{variant: {category: mean over seeds of get(result)[category]}}`` (variants where
    ``get`` returns nothing are left out)."""
    out = {}
    for v, rs in results.items():
        vals = [d for d in (get(r) for r in rs) if d]
        if vals:
            out[v] = {k: float(np.mean([d[k] for d in vals if k in d])) for k in vals[0]}
    return out


def lines(
    curves: dict[str, list[dict[float, float]]],
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None = (-0.02, 1.02),
) -> bytes | None:
    """One line per variant, the mean over its seeds' curves ``{x: y}`` (the first seed's x)."""
    series = {}
    for v, cs in curves.items():
        cs = [c for c in cs if c]
        if cs:
            xs = sorted(cs[0])
            series[v] = (xs, [float(np.mean([c[x] for c in cs if x in c])) for x in xs])
    if not series:
        return None
    p = plt()
    fig, ax = p.subplots(figsize=(5.2, 3.6))
    palette = colors(list(series))
    for v, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=v, color=palette[v])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)

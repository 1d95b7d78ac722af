"""``monitor.html``: one self-contained page (figures inlined as PNG, no network) with a panel
per signal over the windows, its alert level and the windows that raised an alert."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from safeadapt.monitor.window import TESTS, ci_text

LABELS = {
    "embedding_pretrained": "embedding drift, pretrained backbone (MMD)",
    "embedding_adapted": "embedding drift, adapted backbone (MMD)",
    "prediction": "prediction drift (predicted-class shares, chi-square)",
    "ood_rate": "OOD rate above the reference's (energy score, Fisher exact)",
    "ood_rate_knn": "OOD rate above the reference's (kNN distance in the adapted features)",
}


def _png(fig) -> str:
    """The figure as base64 PNG. Margins are fixed in inches (``_margins``) rather than found by
    a layout engine or a tight bounding box: either draws the figure twice, and a monitor
    redraws its page after every update (half of the drawing time, measured). For the same
    reason titles sit at a fixed height (``y=1.0``: Matplotlib otherwise measures every tick
    label to place them) and legends in a fixed corner (``"best"`` searches the data)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _margins(fig, height: float) -> None:
    """Room for the y labels, each panel's title above it and the x label below, in inches."""
    from matplotlib.ticker import MaxNLocator

    fig.subplots_adjust(left=0.1, right=0.98, top=1 - 0.3 / height, bottom=0.45 / height,
                        hspace=0.45)  # fmt: skip
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # windows are whole numbers


def _tests_figure(result) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    more = sorted({t for w in result.windows for t in w.tests if t not in TESTS})
    names = [t for t in TESTS if any(t in w.tests for w in result.windows)] + more
    height = 2.1 * len(names)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, height), sharex=True, squeeze=False)
    _margins(fig, height)
    x = np.asarray([w.index for w in result.windows])
    for ax, name in zip(axes[:, 0], names, strict=True):
        p = np.asarray([w.tests[name].p_value if name in w.tests else np.nan
                        for w in result.windows])  # fmt: skip
        level = np.asarray([w.level for w in result.windows])
        score = -np.log10(np.clip(p, 1e-300, 1))
        ax.plot(x, score, marker="o", ms=3, lw=1, color="#1565c0")
        ax.step(x, -np.log10(level), where="mid", color="#c62828", lw=1, ls="--",
                label="alert level")  # fmt: skip
        hit = np.asarray([name in w.alerts for w in result.windows])
        ax.scatter(x[hit], score[hit], color="#c62828", zorder=3, s=30, label="alert")
        ax.set_ylabel("-log10 p")
        title = LABELS.get(name) or f"OOD rate above the reference's ({name[len('ood_rate_') :]})"
        ax.set_title(title, fontsize=9, loc="left", y=1.0, pad=4)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("window")
    return _png(fig)


def _estimates_figure(result) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc_ax, ood_ax) = plt.subplots(2, 1, figsize=(8, 4.4), sharex=True)
    _margins(fig, 4.4)
    x = np.asarray([w.index for w in result.windows])
    acc_ax.plot(x, [w.atc for w in result.windows], marker="o", ms=3, label="ATC estimate")
    banded = [w for w in result.windows if w.atc_ci]
    if banded:
        acc_ax.fill_between([w.index for w in banded], [w.atc_ci[0] for w in banded],
                            [w.atc_ci[1] for w in banded], alpha=0.2, step="mid",
                            label="ATC 95 % interval")  # fmt: skip
    acc_ax.plot(x, [w.doc for w in result.windows], marker="s", ms=3, label="DoC estimate")
    bbse = [w for w in result.windows if w.bbse is not None]
    if bbse:
        acc_ax.plot([w.index for w in bbse], [w.bbse for w in bbse], marker="D", ms=3,
                    label="label-shift (BBSE) estimate")  # fmt: skip
    labelled = [w for w in result.windows if w.accuracy]
    if labelled:
        lx = np.asarray([w.index for w in labelled])
        acc = np.asarray([w.accuracy.accuracy for w in labelled])
        err = np.asarray([[a - w.accuracy.ci_low, w.accuracy.ci_high - a]
                          for a, w in zip(acc, labelled, strict=True)]).T  # fmt: skip
        acc_ax.errorbar(lx, acc, yerr=err, fmt="k.", capsize=2, label="accuracy (labels)")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title("accuracy estimated without labels", fontsize=9, loc="left", y=1.0, pad=4)
    acc_ax.legend(fontsize=7, loc="lower left")
    rate = np.asarray([w.ood.rate for w in result.windows])
    low = np.asarray([w.ood.ci_low for w in result.windows])
    high = np.asarray([w.ood.ci_high for w in result.windows])
    ood_ax.fill_between(x, low, high, alpha=0.25, color="#6a1b9a", step="mid")
    ood_ax.plot(x, rate, marker="o", ms=3, color="#6a1b9a",
                label="OOD rate, energy (95 % interval)")  # fmt: skip
    knn = [w for w in result.windows if w.ood_knn]
    if knn:
        ood_ax.plot([w.index for w in knn], [w.ood_knn.rate for w in knn], marker="^", ms=3,
                    color="#00897b", label="OOD rate, kNN features")  # fmt: skip
    ood_ax.axhline(result.windows[0].ood.reference_rate, color="k", lw=1, ls=":",
                   label="reference rate")  # fmt: skip
    ood_ax.set_ylabel("share flagged")
    ood_ax.set_xlabel("window")
    ood_ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def render(result, title: str) -> str:
    figures = ""
    if result.windows:
        for caption, data in (
            ("Drift tests per window", _tests_figure(result)),
            ("Accuracy estimates and the OOD rate", _estimates_figure(result)),
        ):
            figures += (f'<figure><figcaption>{caption}</figcaption><img class="plot" '
                        f'alt="{caption}" src="data:image/png;base64,{data}"></figure>')  # fmt: skip
    return page(title, _status(result), figures, _table(result))


def _status(result) -> str:
    alerts = [w.index for w in result.windows if w.alerts]
    headline = (f"Alerts in window(s) {', '.join(map(str, alerts))}." if alerts
                else "No alert.")  # fmt: skip
    return (
        f'<div class="{"warn" if alerts else "pick"}" id="status"><b>{headline}</b> '
        f"{len(result.windows)} window(s). {html.escape(result.policy.describe())}.</div>"
    )


def _table(result) -> str:
    # the alerts right after the window's number: the column a reader looks for stays in view
    # however many estimates follow
    rows = "".join(
        f"<tr><td>{w.index}</td><td>{html.escape(', '.join(w.alerts)) or 'ok'}</td>"
        f"<td>{w.rows}</td><td>{html.escape(w.start or '')}</td>"
        f"<td>{w.atc:.3f}{ci_text(w.atc_ci)}</td><td>{w.doc:.3f}{ci_text(w.doc_ci)}</td>"
        f"<td>{'' if w.bbse is None else f'{w.bbse:.3f}'}{ci_text(w.bbse_ci)}</td>"
        f"<td>{'' if not w.accuracy else f'{w.accuracy.accuracy:.3f}'}</td>"
        f"<td>{w.ood.rate:.3f}</td><td>{'' if not w.ood_knn else f'{w.ood_knn.rate:.3f}'}</td>"
        f"<td>{'' if w.seconds is None else f'{w.seconds:.2f}'}</td></tr>"
        for w in result.windows
    )
    return ("<table><tr><th>window</th><th>alerts</th><th>rows</th><th>start</th><th>ATC</th>"
            "<th>DoC</th><th>BBSE</th><th>accuracy</th><th>OOD rate (energy)</th>"
            "<th>OOD rate (kNN)</th><th>seconds</th>"
            f"</tr>{rows}</table>")  # fmt: skip


def fragment(result) -> str:
    """For a notebook: the status and the table, styles scoped under ``.safeadapt-monitor``."""
    from safeadapt.report.html import scoped_style

    style = scoped_style(".safeadapt-monitor")
    return (
        f'<div class="safeadapt-monitor"><style>{style}</style>{_status(result)}'
        f"{_table(result)}</div>"
    )


def page(title: str, status: str, figures: str, table: str) -> str:
    from safeadapt.report.html import CHECK_SCRIPT, STYLE

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>safeadapt monitor: {html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>Monitor: {html.escape(title)}</h1>
{status}
{figures}
<h2>Windows</h2>
{table}
<script>{CHECK_SCRIPT}</script>
</body></html>
"""


def write(result, path: Path, title: str) -> Path:
    from safeadapt.files import write_atomic

    write_atomic(path, render(result, title))
    return path

"""``monitor.html``: one self-contained page (figures inlined as PNG, no network) with a panel
per signal over the windows, its alert level and the windows that raised an alert."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from safeadapt.monitor.signals import signal_for
from safeadapt.monitor.window import ci_text


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


def _signals(result) -> list:
    """The signals of the windows, in their registry order (a signal a window lacks: a gap)."""
    names = list(dict.fromkeys(name for w in result.windows for name in w.signals))
    found = [(name, signal_for(name)) for name in names]
    return sorted((s for _, s in found if s is not None), key=lambda s: s.order)


def _budget_marks(ax, result) -> None:
    """A dotted line where the signals changed and a new alert budget started."""
    for start in getattr(result, "budgets", ()):
        ax.axvline(start - 0.5, color="#555", lw=1, ls=":")


def _tests_figure(result) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alerting = [s for s in _signals(result) if s.alerts]
    height = 2.1 * len(alerting)
    fig, axes = plt.subplots(len(alerting), 1, figsize=(8, height), sharex=True, squeeze=False)
    _margins(fig, height)
    x = np.asarray([w.index for w in result.windows])
    for ax, signal in zip(axes[:, 0], alerting, strict=True):
        name = signal.name
        p = np.asarray([w.tests[name].p_value if name in w.tests else np.nan
                        for w in result.windows])  # fmt: skip
        level = np.asarray([w.level for w in result.windows])
        score = -np.log10(np.clip(p, 1e-300, 1))
        ax.plot(x, score, marker="o", ms=3, lw=1, color="#1565c0")
        ax.step(x, -np.log10(level), where="mid", color="#c62828", lw=1, ls="--",
                label="alert level")  # fmt: skip
        hit = np.asarray([name in w.alerts for w in result.windows])
        ax.scatter(x[hit], score[hit], color="#c62828", zorder=3, s=30, label="alert")
        _budget_marks(ax, result)
        ax.set_ylabel("-log10 p")
        ax.set_title(signal.label, fontsize=9, loc="left", y=1.0, pad=4)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("window")
    return _png(fig)


def _estimates_figure(result) -> str:
    """Every accuracy estimate (with its interval where it has one) against the labelled
    accuracy, and every OOD rate against the reference's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc_ax, ood_ax) = plt.subplots(2, 1, figsize=(8, 4.4), sharex=True)
    _margins(fig, 4.4)
    signals = _signals(result)
    markers = iter("osD^vP*X" * 4)
    for signal in signals:
        points = [(w.index, signal.estimate(w.get(signal.name))) for w in result.windows]
        points = [(i, e) for i, e in points if e is not None]
        if not points:
            continue
        line = acc_ax.plot([i for i, _ in points], [e.estimate for _, e in points],
                           marker=next(markers), ms=3, label=f"{signal.label} estimate")  # fmt: skip
        banded = [(i, e.ci) for i, e in points if e.ci]
        if banded:
            acc_ax.fill_between([i for i, _ in banded], [c[0] for _, c in banded],
                                [c[1] for _, c in banded], alpha=0.15, step="mid",
                                color=line[0].get_color())  # fmt: skip
    labelled = [w for w in result.windows if w.get("accuracy")]
    if labelled:
        lx = np.asarray([w.index for w in labelled])
        acc = np.asarray([w.get("accuracy").accuracy for w in labelled])
        err = np.asarray([[a - w.get("accuracy").ci_low, w.get("accuracy").ci_high - a]
                          for a, w in zip(acc, labelled, strict=True)]).T  # fmt: skip
        acc_ax.errorbar(lx, acc, yerr=err, fmt="k.", capsize=2, label="accuracy (labels)")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title("accuracy estimated without labels (bands: 95 % intervals)", fontsize=9,
                     loc="left", y=1.0, pad=4)  # fmt: skip
    acc_ax.legend(fontsize=7, loc="lower left")
    reference_rate = None
    for signal in signals:
        rates = [(w.index, signal.rate(w.get(signal.name))) for w in result.windows]
        rates = [(i, r) for i, r in rates if r is not None]
        if not rates:
            continue
        rx = np.asarray([i for i, _ in rates])
        line = ood_ax.plot(rx, [r.rate for _, r in rates], marker=next(markers), ms=3,
                           label=f"OOD rate, {signal.short}")  # fmt: skip
        ood_ax.fill_between(rx, [r.ci_low for _, r in rates], [r.ci_high for _, r in rates],
                            alpha=0.15, step="mid", color=line[0].get_color())  # fmt: skip
        reference_rate = (
            reference_rate if reference_rate is not None else rates[0][1].reference_rate
        )
    if reference_rate is not None:
        ood_ax.axhline(reference_rate, color="k", lw=1, ls=":", label="reference rate (energy)")
    for ax in (acc_ax, ood_ax):
        _budget_marks(ax, result)
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


def _cell(signal, value) -> str:
    """An estimate with its interval, or a flag rate, as one table cell."""
    est, rate = signal.estimate(value), signal.rate(value)
    if est is not None:
        return f"{est.estimate:.3f}{ci_text(est.ci)}"
    return f"{rate.rate:.3f}" if rate is not None else ""


def _table(result) -> str:
    # the alerts right after the window's number: the column a reader looks for stays in view
    # however many estimates follow; then each estimate and rate, the labelled accuracy, time
    shown = [s for s in _signals(result) if s.name != "accuracy" and any(
        _cell(s, w.get(s.name)) for w in result.windows)]  # fmt: skip
    head = "".join(f"<th>{html.escape(s.column)}</th>" for s in shown)
    rows = []
    for w in result.windows:
        acc = w.get("accuracy")
        rows.append(
            f"<tr><td>{w.index}</td><td>{html.escape(', '.join(w.alerts)) or 'ok'}</td>"
            f"<td>{w.rows}</td><td>{html.escape(w.start or '')}</td>"
            + "".join(f"<td>{_cell(s, w.get(s.name))}</td>" for s in shown)
            + f"<td>{'' if acc is None else f'{acc.accuracy:.3f}'}</td>"
            f"<td>{'' if w.seconds is None else f'{w.seconds:.2f}'}</td></tr>"
        )
    return ("<table><tr><th>window</th><th>alerts</th><th>rows</th><th>start</th>"
            f"{head}<th>accuracy</th><th>seconds</th></tr>{''.join(rows)}</table>")  # fmt: skip


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

"""HTML for Jupyter (``_repr_html_``): a study result renders as a compact summary in a notebook
cell -- the pick, the table with intervals, the checks, the cost figure inline; the full report
stays ``report.html``. Its styles are confined to the summary's own root element (the notebook's
page keeps its look) and the report is linked relative to the kernel's working folder (the
notebook's), which a Jupyter server can open. (The shift report and the audit render themselves:
``results.shift.ShiftReport``, ``results.audit.AuditReport``.)"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

ROOT = "safeadapt-study"


def relative_link(path: Path, start: Path | None = None) -> str:
    """``path`` relative to ``start`` (default: the working folder), with forward slashes."""
    return Path(os.path.relpath(Path(path).resolve(), (start or Path.cwd()).resolve())).as_posix()


def study_html(result: Any) -> str:
    from safeadapt.report.html import _checks_html, _table, scoped_style

    summary = result.summary
    rec = summary.recommendation
    link = (
        f" · <a href='{html.escape(relative_link(result.report_path), quote=True)}' "
        "target='_blank'>report.html</a>"
        if result.report_path
        else ""
    )
    figure = ""
    png = result.figure("cost")
    if png:
        data = base64.b64encode(png).decode()
        figure = (
            "<figure><figcaption>Cost vs accuracy</figcaption>"
            f"<img class='plot' alt='cost vs accuracy' src='data:image/png;base64,{data}'></figure>"
        )
    return (
        f"<div class='{ROOT}'><style>{scoped_style('.' + ROOT)}</style>"
        f"<b>{html.escape(summary.study)}</b> · {html.escape(summary.task)} · "
        f"{len(result.runs)} runs ({result.ran} now, {result.skipped} reused){link}"
        f"<div class='pick'><b>Recommended: {html.escape(rec.variant)}</b><br>"
        f"{html.escape(rec.reason)}</div>{_table(summary)}{_checks_html(summary)}{figure}</div>"
    )

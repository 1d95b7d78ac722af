"""HTML for Jupyter (``_repr_html_``): a study result renders as a compact summary in a notebook
cell -- the pick, the table with intervals, the checks; the full report stays ``report.html``.
(The shift report and the audit render themselves: ``shift.report.ShiftReport``,
``bias.AuditReport``.)"""

from __future__ import annotations

import html
from typing import Any


def study_html(result: Any) -> str:
    from safeadapt.report.html import STYLE, _checks_html, _table

    summary = result.summary
    rec = summary.recommendation
    link = (
        f" · <a href='{html.escape(str(result.report_path))}'>report.html</a>"
        if result.report_path
        else ""
    )
    return (
        f"<div class='safeadapt'><style>{STYLE}</style>"
        f"<b>{html.escape(summary.study)}</b> · {html.escape(summary.task)} · "
        f"{len(result.runs)} runs ({result.ran} now, {result.skipped} reused){link}"
        f"<div class='pick'><b>Recommended: {html.escape(rec.variant)}</b><br>"
        f"{html.escape(rec.reason)}</div>{_table(summary)}{_checks_html(summary)}</div>"
    )

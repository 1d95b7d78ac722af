"""HTML for Jupyter (``_repr_html_``): a study result, a shift report and an audit render as a
compact summary in a notebook cell -- the pick, the table with intervals, the checks; the shift
verdicts with the PCA picture; the group table and flags. The full report stays ``report.html``."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any


def study_html(result: Any) -> str:
    from safeadapt.report.html import STYLE, _checks_html, _table

    summary = result.summary
    rec = summary["recommendation"]
    link = (
        f" · <a href='{html.escape(str(result.report_path))}'>report.html</a>"
        if result.report_path
        else ""
    )
    return (
        f"<div class='safeadapt'><style>{STYLE}</style>"
        f"<b>{html.escape(summary['study'])}</b> · {html.escape(summary['task'])} · "
        f"{len(result.runs)} runs ({result.ran} now, {result.skipped} reused){link}"
        f"<div class='pick'><b>Recommended: {html.escape(rec['variant'])}</b><br>"
        f"{html.escape(rec['reason'])}</div>{_table(summary)}{_checks_html(summary)}</div>"
    )


def shift_html(report: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(report['reference'])} vs {html.escape(other)}</td>"
        f"<td>{c['mmd']['mmd2']:.4f} (p {c['mmd']['p_value']:.3g})</td>"
        f"<td>{c['classifier']['auroc']:.3f} (p {c['classifier']['p_value']:.3g})</td>"
        f"<td>{c['ks']['significant_dimensions']}/{c['ks']['dimensions']}</td>"
        f"<td><b>{'shift' if c['shift_detected'] else 'no shift'}</b></td></tr>"
        for other, c in report["comparisons"].items()
    )
    picture = ""
    if "_embeddings" in report:
        from safeadapt.shift import shift_figure

        data = base64.b64encode(shift_figure(report)).decode()
        picture = f"<img style='max-width:100%' src='data:image/png;base64,{data}'>"
    return (
        "<table><thead><tr><th>sets</th><th>MMD²</th><th>domain classifier AUROC</th>"
        f"<th>KS dims</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p><b>Advice:</b> {html.escape(report['advice'])}</p>{picture}"
    )


def audit_html(report: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(g)}</td><td>{row['count']}</td><td>{row['share']:.1%}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v:.0%}' for k, v in row['label_rate'].items()))}</td></tr>"
        for g, row in report["groups"].items()
    )
    flags = "".join(f"<li>{html.escape(f)}</li>" for f in report["flags"]) or "<li>none</li>"
    return (
        "<table><thead><tr><th>group</th><th>n</th><th>share</th><th>label rates</th></tr>"
        f"</thead><tbody>{rows}</tbody></table><p>Cramér's V {report['cramers_v']:.3f}; "
        f"flags:</p><ul>{flags}</ul>"
    )

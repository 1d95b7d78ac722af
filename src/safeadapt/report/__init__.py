"""Study results -> a self-contained HTML report with figures."""

from safeadapt.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]

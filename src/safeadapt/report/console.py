"""The study's console tables (rich): accuracy per run, the study table's scores per variant
(the same columns as the HTML report, registry-driven), and the accuracies with intervals."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape

from safeadapt.report.columns import table_columns
from safeadapt.results import RunRecord, StudySummary

MAX_COLUMNS = 8  # score columns per console table, so each fits 160 characters


def results_table(summary: StudySummary, runs: Sequence[RunRecord]):
    """Per run: ID and each OOD test accuracy, fit and wall time."""
    from rich.table import Table

    splits = list(runs[0].metrics) if runs else []
    table = Table(title=escape(f"{summary.task} / {summary.backbone} (accuracy per run)"))
    table.add_column("run")
    for s in splits:
        table.add_column("ID test" if s == "test" else s.replace("ood:", "OOD "), justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("wall s", justify="right")
    for r in runs:
        cells = [f"{r.metrics[s].accuracy:.3f}" for s in splits]
        name = f"{r.variant} (seed {r.seed})"
        table.add_row(escape(name), *cells, f"{r.fit_seconds:.1f}", f"{r.wall_seconds:.1f}")
    return table


def score_tables(summary: StudySummary) -> list:
    """The study table's columns (mean over seeds, ± std with several seeds) in tables of at most
    ``MAX_COLUMNS`` score columns; the selection and test accuracies are in ``interval_table``."""
    from rich.table import Table

    skip = {"val_accuracy", "ood_val_accuracy", "id_accuracy", "ood_accuracy"}
    cols = [
        c for c in table_columns(summary) if c.key not in skip and not c.key.startswith("accuracy:")
    ]
    tables = []
    for start in range(0, len(cols), MAX_COLUMNS):
        chunk = cols[start : start + MAX_COLUMNS]
        table = Table(
            title=escape(f"{summary.task}: scores ({start // MAX_COLUMNS + 1})"),
            caption="mean over seeds (± std); directions and definitions: `safeadapt list` "
            "and the HTML report",
        )
        table.add_column("variant")
        for c in chunk:
            table.add_column(escape(c.header), justify="right")
        for v in summary.variants:
            cells = []
            for c in chunk:
                s = v.scores.get(c.key)
                if s is None or s.mean is None:
                    cells.append("-")
                    continue
                text = format(s.mean, c.fmt)
                if s.n > 1 and c.key != "trainable_parameters":
                    text += f" ± {format(s.std, c.fmt.lstrip('+'))}"
                cells.append(text)
            table.add_row(escape(v.variant), *cells)
        tables.append(table)
    return tables


def interval_table(summary: StudySummary):
    """Per variant: the selection scores (validation) and the reported accuracies (test) with
    their 95 % intervals."""
    from rich.table import Table

    keys = [
        ("val_accuracy", "ID val"),
        ("ood_val_accuracy", "OOD val"),
        ("id_accuracy", "ID test"),
        ("ood_accuracy", "OOD test (mean)"),
    ]
    table = Table(
        title=escape(f"{summary.task}: accuracy with 95 % intervals"),
        caption="val columns drive the choices; test columns are scored once, for the report",
    )
    table.add_column("variant")
    keys = [(k, h) for k, h in keys if any(k in v.scores for v in summary.variants)]
    for _, header in keys:
        table.add_column(header, justify="right")
    for v in summary.variants:
        cells = []
        for key, _ in keys:
            s = v.scores.get(key)
            if s is None:
                cells.append("-")
            elif s.has_interval:
                cells.append(f"{s.mean:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]")
            else:
                cells.append(f"{s.mean:.3f}")
        table.add_row(escape(v.variant), *cells)
    return table

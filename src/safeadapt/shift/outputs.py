"""What ``safeadapt shift`` reads and writes: the sets it compares, named by the user; the output
folder (new, empty, or one an earlier ``shift`` wrote -- its marker says so); ``shift.json`` and
``shift.png``; and the report in console lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.files import write_atomic
from safeadapt.results.shift import ShiftReport

SHIFT_MARKER = ".safeadapt-shift"


def chosen_sets(splits: dict[str, Any], sets: str) -> list[str]:
    """The split names of ``sets`` (comma-separated; ``ood`` = every OOD split), in order."""
    names: list[str] = []
    for name in (s.strip() for s in sets.split(",")):
        if name == "ood":
            names += [k for k in splits if k.startswith("ood:")]
        elif name in splits:
            names.append(name)
        else:
            raise DataError(f"unknown set {name!r}; the task has {', '.join(splits)} (or 'ood').")
    return names


def claim_shift_folder(out: Path, create: bool = True) -> None:
    """``shift --out``: a new or empty folder, or one an earlier ``shift`` wrote (its marker);
    never a file or a folder of someone else's files."""
    if out.exists() and not out.is_dir():
        raise InvalidConfig(f"shift: --out {out} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / SHIFT_MARKER).is_file():
        raise InvalidConfig(
            f"shift: --out {out} holds files safeadapt did not write; give a new or empty folder."
        )
    if create:
        out.mkdir(parents=True, exist_ok=True)
        (out / SHIFT_MARKER).touch()


def write_shift(report: ShiftReport, out: Path) -> list[Path]:
    """``shift.json`` and ``shift.png`` in ``out`` (claimed first); the paths written."""
    from safeadapt.shift.report import shift_figure

    claim_shift_folder(out)
    write_atomic(out / "shift.json", json.dumps(report.to_json(), indent=1, default=float))
    (out / "shift.png").write_bytes(shift_figure(report))
    return [out / "shift.json", out / "shift.png"]


def shift_lines(report: ShiftReport) -> list[str]:
    """The report as console lines: each comparison's tests and verdict, the probe transfer
    check, typical examples, the linear probe and the advice."""
    ref = report.reference
    lines = []
    for other, c in report.comparisons.items():
        verdict = "DETECTED" if c.shift_detected else "not detected"
        lines.append(
            f"{ref} vs {other}: MMD^2 {c.mmd.mmd2:.4f} (p {c.mmd.p_value:.3g}), "
            f"domain classifier AUROC {c.classifier.auroc:.3f} "
            f"(p {c.classifier.p_value:.3g}), KS {c.ks.significant_dimensions}/"
            f"{c.ks.dimensions} dims -> shift {verdict}"
        )
        if c.probe is not None:
            lines.append(
                f"  probe fitted on {ref}, scored on {other}: {c.probe.transfer:.3f} "
                f"(a probe fitted on {other} itself: {c.probe.own:.3f}, 5-fold CV; "
                f"McNemar p {c.probe.p_value:.3g})"
            )
        for side, examples in c.typical.items():
            lines.append(
                f"  most typical of {side}: " + " | ".join(str(e)[:60] for e in examples[:3])
            )
    if report.probe is not None:
        p = report.probe
        lines.append(f"linear probe on {ref}: {p.accuracy:.3f} (majority {p.majority:.3f})")
    lines.append(f"advice: {report.advice}")
    return lines

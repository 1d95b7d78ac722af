"""The deployment command: monitor an exported model on incoming inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeadapt.cli.app import _check_junit, _console, _guarded, app


@app.command()
@_guarded
def monitor(
    export_dir: Annotated[Path, typer.Argument(help="A folder written by 'safeadapt export'.")],
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Production inputs: CSV / Parquet / JSON lines files, image folders."),
    ],
    window: Annotated[int, typer.Option(help="Inputs per window.")] = 500,
    out: Annotated[
        Path, typer.Option(help="The monitor's folder: its state, monitor.csv, monitor.html.")
    ] = Path("safeadapt-monitor"),
    labels: Annotated[
        str | None, typer.Option(help="Column of labels that came back (empty: not yet).")
    ] = None,
    time_column: Annotated[
        str | None, typer.Option(help="Order the rows by this column before windowing.")
    ] = None,
    input_column: Annotated[
        str | None, typer.Option(help="Column of the inputs (default: text, or image).")
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="False-alarm rate allowed over each horizon of windows.")
    ] = 0.05,
    horizon: Annotated[int, typer.Option(help="Windows the false-alarm rate covers.")] = 50,
    pretrained_rows: Annotated[
        int | None,
        typer.Option(
            help="An export whose adaptation moved the backbone: also test the pretrained "
            "backbone's features, on this many rows of each window (a seeded sample; 500 is "
            "what the test compares, fewer is cheaper). Default: off -- the adapted features' "
            "test alerted at the same windows on the bench's streams, at half the cost."
        ),
    ] = None,
    more_detectors: Annotated[
        str | None,
        typer.Option(
            help="More OOD detectors whose flag rate is tested, comma-separated, beside energy "
            "and kNN: msp, max_logit, mahalanobis, relative_mahalanobis, vim (each is one more "
            "test, so every test's level gets stricter)."
        ),
    ] = None,
    allow_new_signals: Annotated[
        bool,
        typer.Option(
            help="Resume a state measured with other signals (another --more-detectors, or a "
            "safeadapt that measures more): a new alert budget starts at the next window."
        ),
    ] = False,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML to this file.")] = None,
    suggest_study: Annotated[
        Path | None,
        typer.Option(
            help="Write the study to run next, with the drifted windows' labelled rows "
            "as an OOD source (the next verdict is chosen on them)."
        ),
    ] = None,
) -> None:
    """Compare windows of incoming inputs with the export's reference: embedding drift
    (pretrained and adapted features), prediction drift, the OOD rate, accuracy estimated
    without labels (ATC, DoC), accuracy where labels came back. Exits 1 when a new window
    raised an alert."""
    from rich.markup import escape

    from safeadapt.errors import InvalidConfig
    from safeadapt.monitor import Monitor

    _check_junit(junit)
    if suggest_study is not None and suggest_study.exists():  # before any work
        raise InvalidConfig(f"--suggest-study {suggest_study} exists; give a new file name.")
    if suggest_study is not None and labels is None:  # before any window is used up
        raise InvalidConfig(
            "--suggest-study needs the labels that came back (--labels COLUMN): the next study "
            "learns and chooses on the alerting windows' labelled rows."
        )
    check_outputs(export_dir, out, junit=junit, suggest_study=suggest_study)
    console = _console()
    mon = Monitor(export_dir, out, window=window, alpha=alpha, horizon=horizon,
                  input_column=input_column, label_column=labels, time_column=time_column,
                  pretrained_rows=pretrained_rows,
                  more_detectors=tuple(d.strip() for d in (more_detectors or "").split(",")
                                       if d.strip()),
                  allow_new_signals=allow_new_signals)  # fmt: skip
    result = mon.update(list(inputs))
    console.print(escape(result.summary()))
    console.print(f"windows: {escape(str(out / 'monitor.csv'))}")
    if junit is not None:
        junit.write_text(monitor_junit(result, str(export_dir)))
        console.print(f"JUnit XML: {escape(str(junit))}")
    if suggest_study is not None:
        from safeadapt.study.config import load_study
        from safeadapt.study.suggest import suggest_study as write_suggestion

        written = write_suggestion(mon, suggest_study)
        load_study(written)  # the suggestion is a valid study
        console.print(f"next study: {escape(str(written))} (safeadapt run {escape(str(written))})")
    if result.new_alerts:
        raise typer.Exit(code=1)


def check_outputs(export_dir: Path, out: Path, **files: Path | None) -> None:
    """The command's outputs name different paths, none inside the export (which the monitor
    reads and keys on) or the export inside ``--out``; a file output is not inside ``--out``
    (the monitor's own folder)."""
    from safeadapt.errors import InvalidConfig

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    given = {flag(k): v.resolve() for k, v in files.items() if v is not None}
    seen: dict[Path, str] = {}
    for name, path in given.items():
        if path in seen:
            raise InvalidConfig(f"{seen[path]} and {name} name the same file {path}; give each "
                                "its own.")  # fmt: skip
        seen[path] = name
        if out.resolve() == path or out.resolve() in path.parents:
            raise InvalidConfig(f"{name} {path} is inside --out {out}, the monitor's own "
                                "folder; write it elsewhere.")  # fmt: skip
    export, state = export_dir.resolve(), out.resolve()
    if state == export or export in state.parents or state in export.parents:
        raise InvalidConfig(f"--out {out} and the export {export_dir} overlap; give the monitor "
                            "a folder of its own.")  # fmt: skip


def monitor_junit(result, name: str) -> str:
    """One test case per window this update measured; a failure where it raised an alert."""
    from safeadapt.study.checks import junit_suite

    cases = [
        (f"window {w.index}", ", ".join(f"{a} p {w.tests[a].p_value:.3g} <= {w.level:.3g}"
                                        for a in w.alerts) or None)
        for w in result.windows
        if w.index in result.new
    ]  # fmt: skip
    return junit_suite(f"safeadapt monitor: {name}", "safeadapt.monitor", cases)

"""The ``safeadapt`` command line: a thin Typer layer that builds settings and calls the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="safeadapt",
    help="Adapt a pretrained model to a task without breaking it, and measure it.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # logs and CI: do not squeeze the tables to 80 columns
        console = Console(width=160)
    return console


def _print_study(console, result) -> None:
    from rich.markup import escape

    from safeadapt.demo import results_table, safety_tables, tables_input

    data = tables_input(result)
    console.print(results_table(data))
    for table in safety_tables(data):
        console.print(table)
    rec = result.summary["recommendation"]
    console.print(f"[bold green]recommended: {escape(rec['variant'])}[/] — {escape(rec['reason'])}")
    console.print(
        f"{result.ran} runs now, {result.skipped} reused; {result.seconds:.0f} s. "
        f"Report: {result.report_path}  (numbers: {result.output_dir / 'results.csv'})"
    )


@app.command()
def demo(
    modality: Annotated[
        str, typer.Option(help="'text' (MiniLM, VADER) or 'vision' (EfficientNet-Lite0, MNIST).")
    ] = "text",
    quick: Annotated[
        bool, typer.Option("--quick", help="Run on a small sample (about a minute).")
    ] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("safeadapt-out"),
    seed: Annotated[
        list[int] | None, typer.Option(help="Seed(s) of every protocol (repeatable).")
    ] = None,
    protocol: Annotated[
        list[str] | None, typer.Option(help="Protocols to run (repeatable).")
    ] = None,
    max_train: Annotated[int | None, typer.Option(help="Cap on ID training examples.")] = None,
    safety: Annotated[
        bool,
        typer.Option(
            help="Run the safety suite (calibration, detection, distortion, attacks, "
            "corruptions, forgetting, groups)."
        ),
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run the demo study (LP, FT, LP-FT on the packaged model and data) and write its report."""
    from safeadapt.demo import run_demo
    from safeadapt.errors import SafeAdaptError

    console = _console()
    try:
        result = run_demo(
            modality,
            quick=quick,
            out_dir=out,
            seeds=tuple(seed or (0,)),
            protocols=tuple(protocol or ("lp", "ft", "lp-ft")),
            max_train=max_train,
            safety=safety,
            show_progress=progress,
            log=console.print,
        )
    except SafeAdaptError as err:
        _fail(err)
    _print_study(console, result)


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="The study YAML file.")],
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Run the whole study on a small sample first (into <output>/quick) and "
            "estimate how long the full run takes.",
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run (or resume) a study: every protocol x grid point x seed, then report.html."""
    from rich.markup import escape

    from safeadapt.errors import SafeAdaptError
    from safeadapt.study import load_study, run_study

    console = _console()
    try:
        config = load_study(study)
        result = run_study(
            config, quick=quick, show_progress=progress, log=lambda m: console.print(escape(m))
        )
    except SafeAdaptError as err:
        _fail(err)
    _print_study(console, result)
    if quick and result.estimate:
        est = result.estimate
        console.print(
            f"quick study took {est['quick_seconds']:.0f} s; the full study ({est['runs']} runs) "
            f"should take about {est['full_seconds'] / 60:.0f} min (linear in data size; rough)."
        )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example study.")] = Path(
        "study.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example study YAML."""
    from safeadapt.study.config import EXAMPLE_YAML

    if path.exists() and not force:
        _fail(FileExistsError(f"{path} exists; pass --force to overwrite it."))
    path.write_text(EXAMPLE_YAML)
    typer.echo(
        f"wrote {path}; edit it, check it with `safeadapt validate {path}`, run it with "
        f"`safeadapt run {path}`."
    )


@app.command()
def validate(
    study: Annotated[Path, typer.Argument(help="The study YAML file.")],
    data: Annotated[
        bool, typer.Option(help="Also load the data (columns, labels, OOD label sets).")
    ] = True,
) -> None:
    """Check a study without running it: keys, protocols, settings and (by default) the data."""
    from safeadapt.errors import SafeAdaptError
    from safeadapt.study import expand_runs, load_study

    try:
        config = load_study(study)
        modality = "text"
        if data:
            task = config.task.load()
            modality = task.modality
            typer.echo(
                f"data ok: {task.name}, train {len(task.train)}, val {len(task.val)}, "
                f"test {len(task.test)}, OOD {', '.join(task.ood) or 'none'}"
            )
        runs = expand_runs(config, modality)
    except SafeAdaptError as err:
        _fail(err)
    typer.echo(f"study {config.name!r} is valid: {len(runs)} runs -> {config.output_dir}")


@app.command("fetch-data")
def fetch_data(
    force: Annotated[bool, typer.Option(help="Fetch again even if cached.")] = False,
) -> None:
    """Fetch and cache the built-in datasets (run once by the setup step)."""
    from safeadapt.data.assets import fetch_builtin_data
    from safeadapt.errors import SafeAdaptError

    try:
        status = fetch_builtin_data(force)
    except SafeAdaptError as err:
        _fail(err)
    for name, line in status.items():
        typer.echo(f"{name}: {line}")


@app.command("list")
def list_choices() -> None:
    """List registered protocols, metrics, backbones and built-in tasks."""
    from safeadapt.backbones import BACKBONES
    from safeadapt.data import TASKS
    from safeadapt.metrics import METRICS
    from safeadapt.protocols import PROTOCOLS

    for title, reg in [
        ("protocols", PROTOCOLS),
        ("metrics", METRICS),
        ("backbones", BACKBONES),
        ("tasks", TASKS),
    ]:
        typer.echo(f"{title}: {', '.join(reg.names())}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

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


@app.command()
def demo(
    modality: Annotated[
        str, typer.Option(help="'text' (MiniLM, VADER) or 'vision' (EfficientNet-Lite0, MNIST).")
    ] = "text",
    quick: Annotated[
        bool, typer.Option("--quick", help="Run on a small sample (about a minute).")
    ] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("safeadapt-out"),
    seed: Annotated[int, typer.Option(help="Seed of every run.")] = 0,
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
    """Run LP, FT and LP-FT on the default task and print a results table."""
    from rich.console import Console

    from safeadapt.demo import results_table, run_demo, safety_tables
    from safeadapt.errors import SafeAdaptError

    console = Console()
    if not console.is_terminal:  # logs and CI: do not squeeze the tables to 80 columns
        console = Console(width=160)
    try:
        results = run_demo(
            modality,
            quick=quick,
            out_dir=out,
            seed=seed,
            protocols=tuple(protocol or ("lp", "ft", "lp-ft")),
            max_train=max_train,
            safety=safety,
            show_progress=progress,
            log=console.print,
        )
    except SafeAdaptError as err:
        _fail(err)
    console.print(results_table(results))
    for table in safety_tables(results):
        console.print(table)
    console.print(f"total {results['total_seconds']:.0f} s; results written to {results['path']}")


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

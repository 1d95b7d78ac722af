"""The study commands: demo, run, check, export, init, validate."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from safeadapt.cli.app import (
    MaxRuns,
    TrustCode,
    _check_junit,
    _console,
    _fail,
    _guarded,
    _os_error,
    _print_study,
    _report_checks,
    _trust,
    app,
)


@app.command()
@_guarded
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
    max_eval: Annotated[
        int | None, typer.Option(help="Cap on examples per evaluation split.")
    ] = None,
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
            max_eval=max_eval,
            safety=safety,
            show_progress=progress,
            log=console.print,
        )
    except SafeAdaptError as err:
        _fail(err)
    except OSError as err:
        _fail(_os_error(err))
    _print_study(console, result)


def _with_executor(config, name: str | None, address: str | None):
    """The study with ``--executor`` / ``--address`` applied (checked like the YAML's)."""

    from safeadapt.study.config import _executor

    if name is None and address is None:
        return config
    raw = dataclasses.asdict(config.executor)
    raw.update({k: v for k, v in (("name", name), ("address", address)) if v is not None})
    if address is not None and name is None:
        raw["name"] = "ray"  # an address only means something to Ray
    return dataclasses.replace(config, executor=_executor(raw))


@app.command()
@_guarded
def run(
    study: Annotated[Path, typer.Argument(help="The study YAML file.")],
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Run the whole study on a small sample (into <output>/quick, after a "
            "half-size one in <output>/quick-1of2) and estimate how long the full run takes; "
            "data no larger than that sample run the study itself, once.",
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    junit: Annotated[
        Path | None, typer.Option(help="Write the study's checks as JUnit XML to this file.")
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="sequential (default) or ray: one Ray task per run (pip install safeadapt[ray]); "
            "overrides the study's 'executor:'."
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join: auto (the running one), ray://host:10001 or host:6379; "
            "without it a local cluster is started."
        ),
    ] = None,
    trust_code: TrustCode = False,
    max_runs: MaxRuns = 1000,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into an output folder that holds another study's results (replacing "
            "its report and tables).",
        ),
    ] = False,
) -> None:
    """Run (or resume) a study: every protocol x grid point x seed, then report.html.

    Exits 1 when a check of the study's 'checks:' section fails."""
    from rich.markup import escape

    from safeadapt.study import load_study, run_study

    _check_junit(junit)
    _trust(trust_code)
    console = _console()
    # disk full, permissions: finished runs are on disk already (exit 2, _guarded)
    config = _with_executor(load_study(study, max_runs=max_runs), executor, address)
    result = run_study(
        config,
        quick=quick,
        show_progress=progress,
        log=lambda m: console.print(escape(m)),
        force=force,
    )
    from safeadapt import distributed

    if not distributed.is_main():  # under accelerate launch the main process reports
        return
    _print_study(console, result)
    est = result.estimate if quick else None
    if est is not None and est.ran_in_full:
        console.print(
            f"the study's data fit in the quick sample, so the full study ran ({est.runs} "
            f"runs, {est.full_seconds:.0f} s): its results are in {result.output_dir}."
        )
    elif est is not None:
        how = (f"{est.fixed_seconds:.0f} s fixed, the rest per example; fitted on two sample "
               "sizes" if est.two_sizes else "linear in data size; rough")  # fmt: skip
        console.print(
            f"quick study took {est.quick_seconds:.0f} s; the full study ({est.runs} runs) "
            f"should take about {est.full_seconds / 60:.0f} min ({how})."
        )
    _report_checks(console, result.summary.checks, config.name, junit)


@app.command()
@_guarded
def check(
    study: Annotated[Path, typer.Argument(help="The study YAML file (already run).")],
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML to this file.")] = None,
    trust_code: TrustCode = False,
    max_runs: MaxRuns = 1000,
) -> None:
    """Check a finished study's 'checks:' on its summary, without training (exit 1: failed).

    The summary must have been made from the study's current inputs (its data, backbone weights
    and settings, recomputed now); otherwise exit 2: run the study first."""

    from safeadapt.errors import InvalidConfig
    from safeadapt.study import load_study
    from safeadapt.study.checks import evaluate_checks
    from safeadapt.study.evidence import verified_summary
    from safeadapt.study.freshness import fresh_summary

    _check_junit(junit)
    _trust(trust_code)
    console = _console()
    config = load_study(study, max_runs=max_runs)
    if config.checks is None:
        raise InvalidConfig(f"{study} has no 'checks:' section; add bounds such as max_ece: 0.1.")
    summary, task = fresh_summary(config, "check", str(study))
    summary = verified_summary(config, summary, task, "check", str(study))
    result = evaluate_checks(summary, config.checks)
    _report_checks(console, result, config.name, junit)


@app.command()
@_guarded
def export(
    study: Annotated[
        Path, typer.Argument(help="The study YAML file (run with save_models: true).")
    ],
    out: Annotated[Path, typer.Option(help="A new folder for the export.")],
    variant: Annotated[
        str | None, typer.Option(help="A variant of the study (default: the recommended one).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Which seed's model (default: the first).")
    ] = None,
    ensemble: Annotated[
        int | None,
        typer.Option(
            help="Heads the monitoring reference carries for the agreement estimate of accuracy "
            "(ALine-D): 0 for none, 2 to 20. Default: 5 when the study has 3 runs or more."
        ),
    ] = None,
    trust_code: TrustCode = False,
    max_runs: MaxRuns = 1000,
) -> None:
    """Export a study's model: weights, what rebuilds it, and a model card (README.md).

    The study must be current: its summary made from its current data and settings."""
    from safeadapt.study import load_study
    from safeadapt.study.export import export_model

    _trust(trust_code)
    folder = export_model(load_study(study, max_runs=max_runs), out, variant, seed, str(study),
                          ensemble=ensemble)  # fmt: skip
    typer.echo(f"exported to {folder}: model.safetensors, safeadapt.json, README.md (model card)")


@app.command()
@_guarded
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example study.")] = Path(
        "study.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Also every setting of every protocol and safety "
            "family, commented out, with its default and meaning.",
        ),
    ] = False,
) -> None:
    """Write a commented example study YAML."""
    from safeadapt.study.config import EXAMPLE_YAML

    text = EXAMPLE_YAML
    if full:
        from safeadapt.catalog import full_yaml

        text += full_yaml()

    if path.is_dir():
        _fail(
            IsADirectoryError(f"{path} is a directory; give a file name, e.g. {path}/study.yaml.")
        )
    if path.exists() and not force:
        _fail(FileExistsError(f"{path} exists; pass --force to overwrite it."))
    if not path.parent.is_dir():
        _fail(FileNotFoundError(f"folder {path.parent} does not exist; create it first."))
    path.write_text(text)
    typer.echo(
        f"wrote {path}; edit it, check it with `safeadapt validate {path}`, run it with "
        f"`safeadapt run {path}`."
    )


@app.command()
@_guarded
def validate(
    study: Annotated[Path, typer.Argument(help="The study YAML file.")],
    data: Annotated[
        bool, typer.Option(help="Also load the data (columns, labels, OOD label sets).")
    ] = True,
    trust_code: TrustCode = False,
    max_runs: MaxRuns = 1000,
) -> None:
    """Check a study without running it: keys, protocols, settings, sizes and (by default) the
    data. Never runs code the study names ('module:' backbones are found, not imported)."""
    from safeadapt.study import expand_runs, load_study
    from safeadapt.study.validation import check_against

    _trust(trust_code)
    config = load_study(study, max_runs=max_runs)
    modality = config.task.modality()
    task = None
    if data:
        task = config.task.load()
        modality = task.modality
        typer.echo(
            f"data ok: {task.name}, train {len(task.train)}, val {len(task.val)}, "
            f"test {len(task.test)}, OOD {', '.join(task.ood) or 'none'}"
        )
        for note in task.notes:
            if note.startswith(("leakage:", "labels:")):
                typer.secho(f"warning: {note}", fg=typer.colors.YELLOW)
    backbone = None
    if modality is not None:
        backbone = config.backbone.check(modality)  # unknown backbone, options, max_length
        if backbone is None:
            typer.echo(
                f"backbone {config.backbone.name!r}: found, not built (validate does not run "
                "the code it names)"
            )
    runs = expand_runs(config, modality or "text")
    check_against(config, task, backbone)
    typer.echo(f"study {config.name!r} is valid: {len(runs)} runs -> {config.output_dir}")

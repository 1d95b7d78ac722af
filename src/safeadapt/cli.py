"""The ``safeadapt`` command line: a thin Typer layer that builds settings and calls the library."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="safeadapt",
    help="Adapt a pretrained model to a task without breaking it, and measure it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


EXIT_CODES = (
    "Exit codes: 0 ok, 1 a check failed (checks: / --fail-on-shift), 2 usage, settings or data "
    "error, 3 internal error (a bug: the traceback is saved to a log file), 130 interrupted."
)

TrustCode = Annotated[
    bool,
    typer.Option(
        "--trust-code",
        help="Allow code the study names to run: 'module:' backbones and "
        "'trust_remote_code: true' (also SAFEADAPT_TRUST_CODE=1). A setting inside the study "
        "cannot allow it.",
    ),
]
MaxRuns = Annotated[
    int,
    typer.Option(help="Refuse a study of more runs (counted before a grid is expanded).", min=1),
]


def _fail(err: Exception | str) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _trust(allowed: bool) -> None:
    """``--trust-code``: allow it for this process and the ones it starts (Ray, launchers)."""
    if allowed:
        import os

        from safeadapt.trust import ENV

        os.environ[ENV] = "1"


def _crash_log() -> str:
    """The current exception's traceback in a new log file; its path."""
    import tempfile
    import traceback

    import safeadapt

    fd, path = tempfile.mkstemp(prefix="safeadapt-crash-", suffix=".log")
    with open(fd, "w") as f:
        f.write(f"safeadapt {safeadapt.__version__}\n")
        f.write(traceback.format_exc())
    return path


def _guarded(command):
    """Exit codes for a command, whatever happens inside it: 0 ok, 1 a check failed (the
    command exits 1 itself), 2 a settings / data / usage error (``SafeAdaptError``, ``OSError``:
    one ``error:`` line), 3 an internal error (one line; the traceback goes to a log file whose
    path is printed), 130 Ctrl-C (what was kept and how to resume). With ``--junit``, an error
    is written there as an ``<error>`` test case, so CI never reads a crash as a failed gate."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import click

        from safeadapt.errors import SafeAdaptError

        try:
            return command(*args, **kwargs)
        except (typer.Exit, click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            typer.secho(
                "interrupted: finished runs and cached features are kept; run the same command "
                "again to resume (finished runs are reused, the interrupted one is redone).",
                fg=typer.colors.YELLOW,
                err=True,
            )
            raise typer.Exit(code=130) from None
        except SafeAdaptError as err:
            _junit_error(kwargs, "error", str(err))
            _fail(err)
        except OSError as err:
            message = _os_error(err)
            _junit_error(kwargs, "error", message)
            _fail(message)
        except Exception as err:  # a bug: say so in one line, keep the traceback
            try:
                where = f"; traceback saved to {_crash_log()}"
            except OSError:
                where = ""
            first = " ".join(str(err).split())[:200]
            message = (
                f"internal error ({type(err).__name__}: {first}){where}. This is a bug in "
                "safeadapt, not a failed check: please report it with that file."
            )
            _junit_error(kwargs, "internal error", message)
            typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=3) from None

    return wrapper


def _junit_error(kwargs: dict, kind: str, message: str) -> None:
    """Write an ``<error>`` JUnit test case to ``--junit`` (when given and checked writable)."""
    junit, study = kwargs.get("junit"), kwargs.get("study")
    if junit is None or not _junit_ok(junit):
        return
    from safeadapt.study.checks import junit_error_xml

    try:
        junit.write_text(junit_error_xml(str(study or "safeadapt"), kind, message))
    except OSError:
        pass


def _junit_ok(path: Path) -> bool:
    try:
        _check_junit(path)
        return True
    except Exception:
        return False


def _check_junit(path: Path | None) -> None:
    """``--junit``: a new file in an existing folder, or a JUnit file safeadapt wrote -- checked
    before any work, so a bad path never costs a study and never overwrites another file."""
    from safeadapt.errors import InvalidConfig
    from safeadapt.study.checks import is_our_junit

    if path is None:
        return
    if path.is_dir():
        raise InvalidConfig(
            f"--junit {path} is a folder; give a file name such as {path}/checks.xml."
        )
    if not path.parent.is_dir():
        raise InvalidConfig(
            f"--junit {path}: folder {path.parent} does not exist; create it first."
        )
    if path.exists() and not is_our_junit(path):
        raise InvalidConfig(
            f"--junit {path} exists and is not a JUnit file written by safeadapt; it would be "
            "overwritten. Give a new file name."
        )


def _version(value: bool) -> None:
    if value:
        import safeadapt

        typer.echo(f"safeadapt {safeadapt.__version__}")
        raise typer.Exit()


@app.callback(epilog=EXIT_CODES)
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Adapt a pretrained model to a task without breaking it, and measure it."""


def _report_checks(console, checks, study: str, junit: Path | None) -> None:
    """Print the checks table, write JUnit XML, and exit 1 when a check failed."""
    if checks is None:
        if junit is not None:
            _fail(ValueError("--junit needs a 'checks:' section in the study."))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"checks on {checks.variant} ({checks.use})")
    for col in ("check", "value", "bound", "result", "note"):
        table.add_column(col)
    for c in checks.checks:
        shown = f"{c.value:.4g}" if isinstance(c.value, float) else str(c.value)
        table.add_row(
            escape(c.name),
            escape(shown),
            escape(str(c.bound)),
            "[green]pass[/]" if c.passed else "[bold red]FAIL[/]",
            escape(c.note or ""),
        )
    console.print(table)
    if junit is not None:
        from safeadapt.study.checks import junit_xml

        junit.write_text(junit_xml(checks, study))
        console.print(f"JUnit XML: {escape(str(junit))}")
    if not checks.passed:
        raise typer.Exit(code=1)


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # logs and CI: do not squeeze the tables to 80 columns
        console = Console(width=160)
    return console


def _print_study(console, result) -> None:
    from rich.markup import escape

    from safeadapt.report.console import interval_table, results_table, score_tables

    console.print(results_table(result.summary, result.runs))
    for table in score_tables(result.summary):
        console.print(table)
    console.print(interval_table(result.summary))
    rec = result.summary.recommendation
    console.print(f"[bold green]recommended: {escape(rec.variant)}[/] — {escape(rec.reason)}")
    from safeadapt.protocols.start import kept_start_note

    for record in result.runs:
        note = kept_start_note(record)
        if note:
            console.print(
                f"[yellow]note: {escape(record.variant)} seed {record.seed}: {escape(note)}[/]"
            )
    for row in rec.pairwise:
        console.print(
            f"  vs {escape(row.other)} on {row.metric}: {row.difference:+.3f} "
            f"({row.test} p {row.p_value:.3g}, Holm {row.p_holm:.3g}) -> {row.verdict}"
        )
    console.print(
        f"{result.ran} runs now, {result.skipped} reused; {result.seconds:.0f} s. "
        f"Report: {result.report_path}  (numbers: {result.output_dir / 'results.csv'})"
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
    except OSError as err:
        _fail(_os_error(err))
    _print_study(console, result)


def _os_error(err: OSError) -> str:
    import errno

    where = f" writing {err.filename}" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return (
            f"the disk is full{where}. Free some space and run the same command again: "
            "finished runs are kept and reused, the unfinished one is redone."
        )
    return f"{err.strerror or err}{where}. Fix it and run the same command again."


def _with_executor(config, name: str | None, address: str | None):
    """The study with ``--executor`` / ``--address`` applied (checked like the YAML's)."""
    import dataclasses

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
            "half-size one in <output>/quick-1of2) and estimate how long the full run takes.",
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
    if quick and result.estimate:
        est = result.estimate
        console.print(
            f"quick study took {est['quick_seconds']:.0f} s; the full study ({est['runs']} runs) "
            f"should take about {est['full_seconds'] / 60:.0f} min ("
            + (
                f"{est['fixed_seconds']:.0f} s fixed, the rest per example; fitted on two sample "
                "sizes"
                if est.get("two_sizes")
                else "linear in data size; rough"
            )
            + ")."
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
    from safeadapt.study.freshness import fresh_summary

    _check_junit(junit)
    _trust(trust_code)
    console = _console()
    config = load_study(study, max_runs=max_runs)
    if config.checks is None:
        raise InvalidConfig(f"{study} has no 'checks:' section; add bounds such as max_ece: 0.1.")
    summary, _ = fresh_summary(config, "check", str(study))
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
    trust_code: TrustCode = False,
    max_runs: MaxRuns = 1000,
) -> None:
    """Export a study's model: weights, what rebuilds it, and a model card (README.md).

    The study must be current: its summary made from its current data and settings."""
    from safeadapt.study import load_study
    from safeadapt.study.export import export_model

    _trust(trust_code)
    folder = export_model(load_study(study, max_runs=max_runs), out, variant, seed, str(study))
    typer.echo(f"exported to {folder}: model.safetensors, safeadapt.json, README.md (model card)")


@app.command()
@_guarded
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example study.")] = Path(
        "study.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example study YAML."""
    from safeadapt.study.config import EXAMPLE_YAML

    if path.is_dir():
        _fail(
            IsADirectoryError(f"{path} is a directory; give a file name, e.g. {path}/study.yaml.")
        )
    if path.exists() and not force:
        _fail(FileExistsError(f"{path} exists; pass --force to overwrite it."))
    if not path.parent.is_dir():
        _fail(FileNotFoundError(f"folder {path.parent} does not exist; create it first."))
    path.write_text(EXAMPLE_YAML)
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


def _task_and_backbone(task: str | None, study: Path | None, max_per_set: int | None = None):
    """A task and backbone factory from ``--task`` (built-in, default backbone) or ``--study``."""
    from safeadapt.errors import InvalidConfig
    from safeadapt.study.config import load_study
    from safeadapt.study.specs import BackboneSpec, TaskSpec

    if (task is None) == (study is None):
        raise InvalidConfig("give exactly one of --task <built-in name> or --study <study.yaml>.")
    if study is not None:
        config = load_study(study)
        spec, backbone = config.task, config.backbone
    else:
        spec, backbone = TaskSpec(builtin=task), BackboneSpec()
    loaded = spec.load()
    return loaded, backbone.factory(loaded.modality)


@app.command()
@_guarded
def shift(
    task: Annotated[str | None, typer.Option(help="A built-in task (safeadapt list).")] = None,
    study: Annotated[Path | None, typer.Option(help="Use a study's task and backbone.")] = None,
    sets: Annotated[
        str, typer.Option(help="Comma-separated splits; the first is compared with each other.")
    ] = "train,test,ood",
    max_per_set: Annotated[int, typer.Option(help="Seeded sample per set.")] = 500,
    permutations: Annotated[int, typer.Option(help="MMD permutations.")] = 500,
    level: Annotated[float, typer.Option(help="Test level.")] = 0.05,
    out: Annotated[Path, typer.Option(help="Folder for shift.json and shift.png.")] = Path(
        "safeadapt-out/shift"
    ),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    fail_on_shift: Annotated[
        bool, typer.Option("--fail-on-shift", help="Exit 1 when a shift is detected (for CI).")
    ] = False,
    trust_code: TrustCode = False,
) -> None:
    """Distribution shift from frozen embeddings: MMD, domain classifier, KS; picture; advice."""
    from safeadapt.errors import SafeAdaptError
    from safeadapt.shift import shift_report
    from safeadapt.shift.outputs import chosen_sets, claim_shift_folder, shift_lines, write_shift

    _trust(trust_code)
    claim_shift_folder(out, create=False)  # before any work
    try:
        loaded, factory = _task_and_backbone(task, study)
        splits = loaded.splits()
        report = shift_report(
            factory(),
            {n: splits[n] for n in chosen_sets(splits, sets)},
            level=level,
            n_permutations=permutations,
            max_per_set=max_per_set,
            show_progress=progress,
        )
    except SafeAdaptError as err:
        _fail(err)
    written = write_shift(report, out)
    for line in shift_lines(report):
        typer.echo(line)
    typer.echo(f"written: {', '.join(map(str, written))}")
    if fail_on_shift and any(c["shift_detected"] for c in report["comparisons"].values()):
        raise typer.Exit(code=1)


@app.command()
@_guarded
def audit(
    task: Annotated[str | None, typer.Option(help="A built-in task (safeadapt list).")] = None,
    study: Annotated[Path | None, typer.Option(help="Use a study's task.")] = None,
) -> None:
    """Group representation and label-group association of the training set."""
    import json

    from safeadapt.bias import audit as run_audit
    from safeadapt.errors import SafeAdaptError

    try:
        loaded, _ = _task_and_backbone(task, study)
        report = run_audit(loaded.train, loaded.label_names)
    except SafeAdaptError as err:
        _fail(err)
    typer.echo(json.dumps(report, indent=1))


@app.command()
@_guarded
def curate(
    task: Annotated[str | None, typer.Option(help="A built-in task (safeadapt list).")] = None,
    study: Annotated[Path | None, typer.Option(help="Use a study's task.")] = None,
    correlation: Annotated[
        float | None, typer.Option(help="Target label-group correlation in [-1, 1] (binary).")
    ] = None,
    group_share: Annotated[
        list[str] | None, typer.Option(help="group=share (repeatable; shares sum to 1).")
    ] = None,
    size: Annotated[
        int | None, typer.Option(help="Size of the curated set (default: same).")
    ] = None,
    positive_group: Annotated[
        str | None, typer.Option(help="The group aligned with label 1.")
    ] = None,
    allow_duplicates: Annotated[
        bool, typer.Option(help="Duplicate rows when a cell is short.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output CSV (text tasks) or .npz (images).")] = Path(
        "safeadapt-out/curated.csv"
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --out file (never an input).")
    ] = False,
    trust_code: TrustCode = False,
) -> None:
    """Resample the training set to a target correlation or group shares (the original is kept)."""
    import json

    from safeadapt.bias import curate as run_curate
    from safeadapt.bias.curated import (
        check_curate_out,
        curated_path,
        parse_group_shares,
        write_curated,
    )
    from safeadapt.errors import SafeAdaptError

    _trust(trust_code)
    try:
        sources = _study_sources(study)
        check_curate_out(out, sources, force)  # before any work
        loaded, _ = _task_and_backbone(task, study)
        check_curate_out(curated_path(out, loaded.modality), sources, force)
        curated, report = run_curate(
            loaded.train,
            target_correlation=correlation,
            group_shares=parse_group_shares(group_share),
            size=size,
            positive_group=positive_group,
            allow_duplicates=allow_duplicates,
            seed=seed,
        )
    except SafeAdaptError as err:
        _fail(err)
    written = write_curated(curated, loaded.label_names, loaded.modality, out)
    typer.echo(json.dumps(report, indent=1))
    typer.echo(f"written: {written}")


def _study_sources(study: Path | None) -> list[str | None]:
    """The data files a study reads (none without ``--study``)."""
    if study is None:
        return []
    from safeadapt.study.config import load_study

    spec = load_study(study).task
    return [spec.train, spec.test, spec.validation, *spec.ood.values(), *spec.ood_val.values()]


@app.command("fetch-data")
@_guarded
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
@_guarded
def list_choices() -> None:
    """List registered protocols, metrics, backbones, built-in tasks and safety families."""
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
    from safeadapt.safety import FAMILIES

    typer.echo("safety families (study 'safety: {family: {...} | false}'):")
    for name in FAMILIES.in_order():
        cls = FAMILIES.get(name)
        typer.echo(f"  {name}: {cls.title}")
        fields = dataclasses.fields(cls.Config)
        if fields:
            typer.echo("    settings: " + ", ".join(f"{f.name}={f.default!r}" for f in fields))
        for key, (label, higher, _) in cls.SCORES.items():
            direction = {True: "higher is better", False: "lower is better", None: "no best"}
            typer.echo(f"    {key} -- {label} ({direction[higher]})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

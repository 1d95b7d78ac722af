"""The ``safeadapt`` application: the Typer app, the guards that map errors to exit codes
0/1/2/3, the shared options and the console output of a study. The commands are in
``study_commands`` (demo, run, check, export, init, validate) and ``data_commands`` (shift,
audit, curate, fetch-data, list)."""

from __future__ import annotations

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
    "Exit codes: 0 ok, 1 a check failed (checks: / --fail-on-shift / a monitor alert), 2 usage, "
    "settings or data error, 3 internal error (a bug: the traceback is saved to a log file), 130 "
    "interrupted, 141 the output's reader went away (| head)."
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


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time on
    the closed pipe (the recipe of the ``signal`` module's documentation)."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _guarded(command):
    """Exit codes for a command, whatever happens inside it: 0 ok, 1 a check failed (the
    command exits 1 itself), 2 a settings / data / usage error (``SafeAdaptError``, ``OSError``:
    one ``error:`` line), 3 an internal error (one line; the traceback goes to a log file whose
    path is printed), 130 Ctrl-C (what was kept and how to resume), 141 when the reader of the
    output went away before it was written (``safeadapt list | head``: quietly, as any Unix tool
    killed by SIGPIPE; output that fit in the pipe before the reader left ends 0, as for any
    tool). With ``--junit``, an error
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
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(code=141) from None
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


def _os_error(err: OSError) -> str:
    import errno

    where = f" writing {err.filename}" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return (
            f"the disk is full{where}. Free some space and run the same command again: "
            "finished runs are kept and reused, the unfinished one is redone."
        )
    return f"{err.strerror or err}{where}. Fix it and run the same command again."


def main() -> None:
    app()

"""The ``safeadapt`` command line: a thin Typer layer that builds settings, calls the library and
prints what it returns. ``app`` and the guards are in ``app``; the commands register themselves
from ``study_commands``, ``data_commands`` and ``monitor_commands``."""

# the commands register themselves, study commands first (the order of `safeadapt --help`)
from safeadapt.cli import study_commands  # noqa: F401  # isort: skip
from safeadapt.cli import data_commands  # noqa: F401  # isort: skip
from safeadapt.cli import monitor_commands  # noqa: F401  # isort: skip
from safeadapt.cli.app import app, main

__all__ = ["app", "main"]

"""A study from Python: the same steps as the command line, on one object.

    import safeadapt as sa

    study = sa.Study.load("study.yaml")          # or sa.Study.from_dict({...})
    result = study.run()                         # resumable; result.summary, result.report_path
    verdict = study.check()                      # the 'checks:' on the current summary
    folder = study.export("exported/")           # the recommended model, its card

``check`` and ``export`` judge only a current study: a summary made from other data, weights or
settings is refused (:class:`safeadapt.StaleStudy`), as on the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from safeadapt.results import CheckReport
from safeadapt.study.config import StudyConfig, load_study
from safeadapt.study.specs import MAX_RUNS


class Study:
    """One study: its settings (:attr:`config`, a validated :class:`StudyConfig`) and the folder
    its results go to (:attr:`output_dir`)."""

    def __init__(
        self, config: StudyConfig, source: str | None = None, raw: Mapping[str, Any] | None = None
    ) -> None:
        self.config = config
        self._source = source or f"{config.name}.yaml"
        self._raw = dict(raw) if raw is not None else None  # what export stores for a monitor

    @classmethod
    def load(cls, path: str | Path, max_runs: int = MAX_RUNS) -> Study:
        """A study YAML file, validated (``safeadapt validate`` without loading data)."""
        return cls(load_study(path, max_runs=max_runs), str(path))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], max_runs: int = MAX_RUNS) -> Study:
        """A study from the same mapping a YAML file holds."""
        return cls(StudyConfig.from_dict(raw, max_runs=max_runs), raw=raw)

    @property
    def output_dir(self) -> Path:
        return self.config.output_dir

    def run(
        self,
        *,
        quick: bool = False,
        force: bool = False,
        show_progress: bool = True,
        log: Callable[[str], Any] = print,
    ):
        """Run or resume the study (``safeadapt run``); returns its ``StudyResult``."""
        from safeadapt.study.runner import run_study

        return run_study(
            self.config, quick=quick, force=force, show_progress=show_progress, log=log
        )

    def check(self) -> CheckReport:
        """The study's ``checks:`` evaluated on its current summary (``safeadapt check``):
        ``.passed``, ``.failed`` and every check's row in ``.checks``."""
        from safeadapt.errors import InvalidConfig
        from safeadapt.study.checks import evaluate_checks
        from safeadapt.study.freshness import fresh_summary

        if self.config.checks is None:
            raise InvalidConfig(f"study {self.config.name!r} has no 'checks:' section.")
        summary, _ = fresh_summary(self.config, "check", self._source)
        return evaluate_checks(summary, self.config.checks)

    def export(self, out: str | Path, variant: str | None = None, seed: int | None = None) -> Path:
        """Export a model of the study (``safeadapt export``; default: the recommended variant,
        first seed); the study must have been run with ``save_models: true``."""
        from safeadapt.study.export import export_model

        return export_model(self.config, out, variant, seed, self._source, self._raw)

    def __repr__(self) -> str:
        entries = ", ".join(e.label for e in self.config.protocols)
        return f"<Study {self.config.name!r}: {entries} x seeds {list(self.config.seeds)}>"

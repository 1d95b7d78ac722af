"""Studies: a YAML/Python config of protocols x seeds, a resumable runner, the recommendation."""

from safeadapt.study import executors as _executors  # noqa: F401  (registers the executors)
from safeadapt.study.config import EXAMPLE_YAML, StudyConfig, load_study
from safeadapt.study.plan import expand_runs
from safeadapt.study.runner import StudyResult, run_study
from safeadapt.study.study import Study

__all__ = [
    "EXAMPLE_YAML",
    "Study",
    "StudyConfig",
    "StudyResult",
    "expand_runs",
    "load_study",
    "run_study",
]

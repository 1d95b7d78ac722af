"""Studies: a YAML/Python config of protocols x seeds, a resumable runner, the recommendation."""

from safeadapt.study.config import EXAMPLE_YAML, StudyConfig, expand_runs, load_study
from safeadapt.study.runner import StudyResult, run_study

__all__ = ["EXAMPLE_YAML", "StudyConfig", "StudyResult", "expand_runs", "load_study", "run_study"]

"""Every example study parses (its runs counted and bounded), and its built-in task's options pass their declared
rules (no data is loaded here; `safeadapt run` of each is in the README with its wall time)."""

from pathlib import Path

import pytest

from safeadapt.config import check_options
from safeadapt.data.builtin.base import TASKS
from safeadapt.study.config import load_study

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_study_parses_with_valid_task_options(path):
    config = load_study(path)
    task = config.task
    if task.builtin is not None:
        check_options(TASKS.get(task.builtin), dict(task.options), f"task {task.builtin!r}",
                      ("seed",))  # fmt: skip
    assert len(config.protocols) >= 1 and len(config.seeds) >= 1
    if path.stem.startswith("reproduce-"):
        assert len(config.seeds) >= 2  # a reproduction reports a spread over seeds

"""Tasks, splits, built-in datasets, data sources and the frozen-feature cache."""

from safeadapt.data.builtin import DEFAULT_TASK, TASKS, load_builtin_task
from safeadapt.data.sources import load_task
from safeadapt.data.task import Split, Task

__all__ = ["DEFAULT_TASK", "TASKS", "Split", "Task", "load_builtin_task", "load_task"]

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


GPU = sorted((EXAMPLES[0].parent / "gpu").glob("*.yaml"))


@pytest.mark.parametrize("path", GPU, ids=lambda p: p.stem)
def test_gpu_recipe_validates_on_a_tiny_stand_in(path, tiny_clip, tmp_path):
    """The GPU recipe with its model and data swapped for a tiny random CLIP and the built-in
    digits (no network): every protocol setting, the zero-shot prompts and the safety settings
    pass ``safeadapt validate`` as written."""
    import yaml
    from typer.testing import CliRunner

    from safeadapt.cli import app
    from safeadapt.study.config import read_study_file

    raw = read_study_file(path)
    assert raw["backbone"]["name"].startswith("hf:") and raw["task"]["train"].startswith("hub:")
    stand_in = {**raw, "backbone": {"name": f"hf:{tiny_clip}"},
                "task": {"builtin": "digits", "max_train": 60, "max_eval": 40},
                "executor": {"name": "sequential"}, "output": str(tmp_path / "out")}  # fmt: skip
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(stand_in))
    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == 0, result.output
    assert f"{sum(len(load_study(study).seeds) for _ in raw['protocols'])} runs" in result.output

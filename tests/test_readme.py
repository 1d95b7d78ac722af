"""The README's walkthrough ("Your own model in ten minutes") runs as written: every block
marked ``<!-- runnable -->`` in that section, in order, in an empty folder -- own CSV files, an
``hf:`` model, validate, run with gates, export with its card, check, and the notebook's API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Your own model in ten minutes"


def runnable_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block right after a ``<!-- runnable -->`` line in the
    walkthrough section."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end > 0 else None]
    pattern = re.compile(r"<!-- runnable -->\n```(\w+)\n(.*?)\n```", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(section)]


def as_script(blocks: list[tuple[str, str]]) -> str:
    """One shell script: shell blocks as they are, Python blocks through the venv's python
    (so a variable a shell block sets reaches the later shell blocks, as in one terminal)."""
    lines = ["set -euo pipefail"]
    for language, code in blocks:
        if language == "python":
            lines += ["python - <<'PYTHON'", code, "PYTHON"]
        else:
            assert language == "sh", language
            lines.append(code)
    return "\n".join(lines) + "\n"


def test_the_walkthrough_is_found_whole():
    blocks = runnable_blocks(README.read_text())
    languages = [language for language, _ in blocks]
    assert languages == ["python", "sh", "sh", "sh", "python"]
    script = as_script(blocks)
    for step in ("safeadapt validate", "safeadapt run", "safeadapt export", "safeadapt check"):
        assert step in script


def test_the_walkthrough_runs_as_written(tmp_path):
    script = as_script(runnable_blocks(README.read_text()))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SAFEADAPT_TRUST_CODE", None)  # nothing in the walkthrough needs code to run
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    folder = tmp_path / "safeadapt-out" / "my-reviews"
    assert (folder / "report.html").is_file() and (folder / "splits.csv").is_file()
    assert "all passed" in out
    card = (tmp_path / "my-model" / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "model-index" in card
    assert "split: tweets" in card  # the OOD result under its own dataset entry
    assert (tmp_path / "checks.xml").read_text().count("<testcase") == 2
    # the recommendation the notebook printed is one of the study's two protocols
    assert re.search(r"^(lp|lp-ft) \S+report\.html$", done.stdout, re.M), done.stdout[-2000:]

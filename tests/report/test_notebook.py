"""Notebooks (issue 25, item 4): a study result renders in Jupyter without restyling the page,
links its report relative to the notebook and shows a figure inline; the quickstart notebook
runs headless end to end."""

import json
import re
import shutil
from pathlib import Path

import pytest

V0 = Path(__file__).parent.parent / "study" / "golden" / "v0"
QUICKSTART = Path(__file__).parent.parent.parent / "examples" / "quickstart.ipynb"


def _result(tmp_path):
    from safeadapt.results import RunRecord, StudySummary
    from safeadapt.study.runner import StudyResult

    summary = StudySummary.from_json(json.loads((V0 / "summary.json").read_text()))
    record = RunRecord.from_json(json.loads((V0 / "record.json").read_text()))
    report = tmp_path / "out" / "report.html"
    return StudyResult(None, [record], summary, tmp_path / "out", report, 0, 1, 1.0)


def test_the_notebook_view_keeps_its_styles_to_itself(tmp_path, monkeypatch):
    from safeadapt.report.notebook import ROOT

    monkeypatch.chdir(tmp_path)  # the kernel's folder is the notebook's
    html = _result(tmp_path)._repr_html_()
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    selectors = [s.strip() for rule in style.split("}") if "{" in rule
                 for s in rule.split("{")[0].split(",")]  # fmt: skip
    assert selectors and all(s.startswith(f".{ROOT}") for s in selectors), selectors
    assert html.startswith(f"<div class='{ROOT}'>")
    assert "href='out/report.html'" in html and str(tmp_path) not in html  # relative
    assert "Recommended: lp-ft" in html and "data:image/png;base64," in html  # figure inline


def test_the_quickstart_notebook_runs_headless(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = tmp_path / "quickstart.ipynb"
    shutil.copy(QUICKSTART, notebook)
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "Recommended:" in html and "<table>" in html
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure, inline
    assert re.search(r"Recommended: lp", text)
    assert (tmp_path / "safeadapt-out" / "quickstart" / "report.html").is_file()

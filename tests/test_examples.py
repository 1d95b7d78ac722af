"""The experiment scripts under examples/ drive the study runner; a tiny real run of each."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = {
    "source": "mnist",
    "image_size": 32,
    "bias_size": 200,
    "bias_steps": 4,
    "bias_lr": 3e-4,
    "size": 120,
    "correlations": (1.0, 0.0),
    "minority_shares": (0.25,),
    "ft_steps": 2,
    "ft_lr": 1e-4,
    "batch_size": 32,
    "test_per_cell": 40,
}


# slow: twelve variants of real studies (the curation itself is tested in tests/bias/)
@pytest.mark.slow
def test_overwriting_bias_runs_as_studies_resumes_and_refuses_a_corrupt_backbone(tmp_path):
    from safeadapt.errors import CheckpointError

    ex = _module("overwriting_bias")
    logs: list[str] = []
    rows = ex.run(TINY, tmp_path, [0], log=logs.append)
    # 3 finetuning sets x 2 backbones x 2 protocols, each an ordinary study's variant
    assert len(rows) == 12 and {r["protocol"] for r in rows} == {"lp", "ft"}
    assert any("biased backbone on the balanced test" in line for line in logs)
    for r in rows:
        assert 0 <= r["worst_cell_accuracy"] <= r["id_accuracy"] <= 1
        lo, hi = r["worst_cell_accuracy_ci"]
        assert lo is None or lo <= r["worst_cell_accuracy"] <= hi
    # fully correlated finetuning data: every model keys on colour
    assert all(r["tpr_gap"] > 0.5 for r in rows if r["sweep"] == "correlation" and r["level"] == 1)
    text = ex.table(rows)
    assert "correlation 1" in text and "minority share 0.25" in text
    assert ex.figure(rows)[:4] == b"\x89PNG"
    assert (tmp_path / "biased-correlation-0" / "report.html").exists() is False  # no reports

    logs.clear()
    again = ex.run(TINY, tmp_path, [0], log=logs.append)  # resume: every run is reused
    assert [r["worst_cell_accuracy"] for r in again] == [r["worst_cell_accuracy"] for r in rows]
    assert all(" 0 runs now" in line for line in logs if "runs now" in line)

    model = next((tmp_path / "bias" / "runs").glob("*/model.safetensors"))
    model.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        ex.run(TINY, tmp_path, [0], log=logs.append)

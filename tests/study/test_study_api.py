"""The README's "A study from Python" block runs as written: run, check, export, reload."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _block() -> str:
    text = README.read_text()
    section = text.split("### A study from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_study_from_python_runs(tmp_path, monkeypatch, capsys):
    from safeadapt.data import assets

    real = assets.vader_dir()  # the data stay where setup put them; features go to a fresh home
    monkeypatch.setattr(assets, "vader_dir", lambda: real)
    monkeypatch.setenv("SAFEADAPT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_block(), "README.md", "exec"), namespace)  # noqa: S102 -- our own README
    out = capsys.readouterr().out
    study, verdict, model = namespace["study"], namespace["verdict"], namespace["model"]
    assert study.output_dir == Path("safeadapt-out/from-python")
    assert verdict.variant in {"lp", "lp-strong"} and "checks passed:" in out
    assert (tmp_path / "exported-model" / "model.safetensors").is_file()
    assert model.num_classes == 2
    assert repr(study) == "<Study 'from-python': lp, lp-strong x seeds [0]>"

import json

from typer.testing import CliRunner

from safeadapt.cli import app

runner = CliRunner()


def test_list_comes_from_the_registries():
    out = runner.invoke(app, ["list"])
    assert out.exit_code == 0
    assert "protocols: ft, lp, lp-ft" in out.output


def test_quick_text_demo_end_to_end(tmp_path, monkeypatch):
    from safeadapt.data import assets
    from safeadapt.paths import home

    real = assets.vader_dir()  # the data stay where setup put them; features go to a fresh home
    monkeypatch.setattr(assets, "vader_dir", lambda: real)
    monkeypatch.setenv("SAFEADAPT_HOME", str(tmp_path / "home"))
    out = runner.invoke(
        app,
        [
            "demo",
            "--quick",
            "--max-train",
            "64",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--no-safety",
            "--protocol",
            "lp",
            "--protocol",
            "lp-ft",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "ID test" in out.output and "OOD tweets" in out.output
    results = json.loads((tmp_path / "demo-text" / "results.json").read_text())
    assert [r["protocol"] for r in results["runs"]] == ["lp", "lp-ft"]
    assert results["sizes"]["train"] == 64
    assert any("sampled" in n for n in results["notes"])
    assert (home() / "features").is_dir()


def test_bad_modality_is_one_line():
    out = runner.invoke(app, ["demo", "--modality", "audio"])
    assert out.exit_code == 2
    assert "'modality' must be 'text' or 'vision'" in out.output

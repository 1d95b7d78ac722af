"""MLflow tracking of a real tiny study into a local sqlite store."""

import pytest

from safeadapt.errors import InvalidConfig
from safeadapt.study import StudyConfig, run_study


def test_every_run_and_the_summary_are_logged(tiny_study, tmp_path, feature_cache):
    mlflow = pytest.importorskip("mlflow", reason="pip install mlflow (the dev extra has it)")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    tiny_study["protocols"] = {"lp": {}}
    tiny_study["seeds"] = [0, 1]
    tiny_study["safety"] = False
    tiny_study["tracking"] = {"mlflow_uri": uri, "experiment": "tiny-test"}
    result = run_study(
        StudyConfig.from_dict(tiny_study),
        cache=feature_cache,
        show_progress=False,
        log=lambda m: None,
    )
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny-test")
    runs = client.search_runs([exp.experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted([*(r["run"]["run_id"] for r in result.runs), "tiny-summary"])
    lp0 = next(r for r in runs if r.info.run_name == result.runs[0]["run"]["run_id"])
    assert lp0.data.metrics["id_accuracy"] == pytest.approx(
        result.runs[0]["metrics"]["test"]["accuracy"]
    )
    assert lp0.data.params["protocol"] == "lp"
    summary = next(r for r in runs if r.info.run_name == "tiny-summary")
    assert summary.data.tags["recommended"] == "lp"


def test_tracking_without_mlflow_says_what_to_install(tiny_study, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow":
            raise ImportError("no mlflow")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    from safeadapt.study.tracking import make_tracker

    tiny_study["tracking"] = {"mlflow_uri": "sqlite:///x.db"}
    with pytest.raises(InvalidConfig, match="pip install mlflow"):
        make_tracker(StudyConfig.from_dict(tiny_study))

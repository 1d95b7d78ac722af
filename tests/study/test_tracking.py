"""MLflow tracking of a real tiny study into a local sqlite store."""

import time

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
    assert names == sorted([*(r.run_id for r in result.runs), "tiny-summary"])
    lp0 = next(r for r in runs if r.info.run_name == result.runs[0].run_id)
    assert lp0.data.metrics["id_accuracy"] == pytest.approx(result.runs[0].test.accuracy)
    assert lp0.data.params["protocol"] == "lp"
    summary = next(r for r in runs if r.info.run_name == "tiny-summary")
    assert summary.data.tags["recommended"] == "lp"
    assert "pick.id_accuracy" in summary.data.metrics  # the summary's scores on the study's run
    children = [r for r in runs if r.info.run_name != "tiny-summary"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {summary.info.run_id}
    out = result.output_dir.resolve()
    assert exp.artifact_location == (out / "mlflow-artifacts").as_uri()  # not ./mlruns


def test_reused_runs_are_logged_once_and_the_nested_spelling_works(
    tiny_study, tmp_path, feature_cache
):
    mlflow = pytest.importorskip("mlflow", reason="pip install mlflow (the dev extra has it)")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    tiny_study["protocols"] = {"lp": {}}
    tiny_study["seeds"] = [0, 1]
    tiny_study["safety"] = False
    tiny_study["preflight"] = {"checks": []}
    quiet = {"cache": feature_cache, "show_progress": False, "log": lambda m: None}
    first = run_study(StudyConfig.from_dict(tiny_study), **quiet)  # no tracking yet
    tiny_study["tracking"] = {"mlflow": {"uri": uri, "experiment": "later"}}
    for _ in range(2):  # every run is reused; the second call logs nothing twice
        again = run_study(StudyConfig.from_dict(tiny_study), **quiet)
        assert again.ran == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("later").experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted([*(r.run_id for r in first.runs), "tiny-summary"])


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


def test_weights_and_biases_offline_logs_every_run_and_the_summary(
    tiny_study, tmp_path, feature_cache
):
    pytest.importorskip("wandb", reason="pip install wandb (the dev extra has it)")
    tiny_study["protocols"] = {"lp": {}}
    tiny_study["seeds"] = [0, 1]
    tiny_study["safety"] = False
    tiny_study["preflight"] = {"checks": []}
    tiny_study["tracking"] = {"wandb": {"project": "tiny-wb", "mode": "offline"}}
    result = run_study(
        StudyConfig.from_dict(tiny_study),
        cache=feature_cache,
        show_progress=False,
        log=lambda m: None,
    )
    runs = sorted((result.output_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 3  # two runs and the summary
    # W&B's own service process writes each offline log and may still be flushing the last
    # run's after finish() returned (seen once on a loaded machine): wait for it, up to 60 s
    names = [r.run_id.encode() for r in result.runs] + [b"tiny-summary"]
    deadline = time.monotonic() + 60
    while True:
        logs = [next(r.glob("run-*.wandb")).read_bytes() for r in runs]
        if all(any(n in b for b in logs) for n in names) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for record in result.runs:
        run_id = record.run_id
        (log,) = [b for b in logs if run_id.encode() in b]  # the offline protobuf log
        assert b"id_accuracy" in log and b"tiny-wb" in log
        accuracy = record.test.accuracy
        assert repr(accuracy).encode() in log  # the value, as W&B stores it (JSON)
        saved = [r for r in runs if (r / "files" / "record.json").is_file()]
        assert saved  # the run's record is kept with it
    (summary,) = [b for b in logs if b"tiny-summary" in b]
    assert b"recommended:lp" in summary


def test_wandb_settings_are_checked():
    from safeadapt.study.specs import TrackingSpec, WandbSpec

    nested = TrackingSpec(mlflow={"uri": "sqlite:///x.db", "experiment": "e"})
    assert (nested.mlflow_uri, nested.experiment) == ("sqlite:///x.db", "e")
    with pytest.raises(InvalidConfig, match="different values"):
        TrackingSpec(mlflow_uri="sqlite:///a.db", mlflow={"uri": "sqlite:///b.db"})
    with pytest.raises(InvalidConfig, match="'tracking.mlflow' must be a mapping"):
        TrackingSpec(mlflow={"url": "x"})

    assert TrackingSpec(wandb={"project": "p"}).wandb == WandbSpec(project="p")
    with pytest.raises(InvalidConfig, match="'mode' must be offline, online or disabled"):
        TrackingSpec(wandb={"mode": "cloud"})
    with pytest.raises(InvalidConfig, match="unknown setting 'projet'"):
        TrackingSpec(wandb={"projet": "p"})

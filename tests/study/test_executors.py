"""Studies on a local Ray cluster (``ray.init(num_cpus=2)``): the same records as the sequential
executor, and a worker killed mid-run means the run is retried and recorded exactly once."""

import copy
import json
from pathlib import Path

import pytest

from safeadapt.study import StudyConfig, run_study
from tests.study.conftest import TINY_STUDY

ray = pytest.importorskip("ray", reason="pip install safeadapt[ray] (the dev extra has it)")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},  # workers import tests.study.*
    )
    yield
    ray.shutdown()


def _study(tmp_path, name, **changes):
    raw = copy.deepcopy(TINY_STUDY)
    raw.update(
        {
            "safety": {"families": ["calibration", "distortion"]},
            "preflight": {"checks": []},
            "output": str(tmp_path / name),
            **changes,
        }
    )
    return StudyConfig.from_dict(raw)


def _records(result):
    return {r.run_id: r for r in result.runs}


def test_ray_gives_the_sequential_records(cluster, tmp_path, feature_cache):
    quiet = {"cache": feature_cache, "show_progress": False, "log": lambda m: None}
    sequential = run_study(_study(tmp_path, "seq"), **quiet)
    on_ray = run_study(_study(tmp_path, "ray", executor="ray"), **quiet)
    assert on_ray.ran == 4 and len(on_ray.runs) == 4
    a, b = _records(sequential), _records(on_ray)
    assert list(a) == list(b)  # the same content keys, in plan order
    for run_id in a:
        for split, metrics in a[run_id].metrics.items():
            for key, value in metrics.values.items():  # 1 vs 2 threads: sums in another order
                assert b[run_id].metrics[split].get(key) == pytest.approx(value, abs=1e-6)
        assert b[run_id].environment["pid"] != a[run_id].environment["pid"]
    assert on_ray.summary.recommendation.variant == sequential.summary.recommendation.variant
    again = run_study(_study(tmp_path, "ray", executor="ray"), **quiet)
    assert again.ran == 0 and again.skipped == 4  # finished runs are reused, not resubmitted


# slow (20 s: a Ray cluster whose worker is killed); a killed study resuming with every run once
# is tested without Ray in test_runner.py, Ray's records against the sequential ones above
@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_run_recorded_once(
    cluster, tmp_path, feature_cache, monkeypatch
):
    monkeypatch.setenv("SAFEADAPT_TRUST_CODE", "1")  # the study names its own backbone code
    marker = tmp_path / "killed.pid"
    config = _study(
        tmp_path,
        "killed",
        protocols={"lp": {}},
        backbone={
            "name": "module:tests.study.dying_backbone:build",
            "options": {"marker": str(marker)},
        },  # fmt: skip
        executor={"name": "ray", "max_retries": 2},
    )
    result = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    assert marker.is_file()  # a worker was killed mid-run
    assert result.ran == 2 and len(result.runs) == 2
    runs = config.output_dir / "runs"
    for record in result.runs:
        folder = runs / record.run_id
        assert json.loads((folder / "record.json").read_text())["run"] == record.run.to_json()
        leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert leftovers == []  # nothing half-written
    assert sorted(p.name for p in runs.iterdir()) == sorted(r.run_id for r in result.runs)


# slow: a second Ray cluster; the retried worker (the default) is tested above
@pytest.mark.slow
def test_without_retries_a_killed_worker_fails_the_run_and_keeps_the_rest(
    cluster, tmp_path, feature_cache, monkeypatch
):
    monkeypatch.setenv("SAFEADAPT_TRUST_CODE", "1")  # the study names its own backbone code
    from safeadapt.errors import SafeAdaptError

    marker = tmp_path / "killed.pid"
    config = _study(
        tmp_path,
        "no-retry",
        protocols={"lp": {}},
        seeds=[0],
        backbone={
            "name": "module:tests.study.dying_backbone:build",
            "options": {"marker": str(marker)},
        },  # fmt: skip
        executor={"name": "ray", "max_retries": 0},
    )
    with pytest.raises(SafeAdaptError, match="failed on Ray"):
        run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    again = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    assert again.ran == 1  # the marker is there now: the rerun does it

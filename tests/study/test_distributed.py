"""A tiny study under ``accelerate launch`` with 2 CPU processes (gloo): extraction, evaluation and
training split between them; the records equal a single-process run's; exactly one process wrote
each file."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from safeadapt.paths import data_dir
from safeadapt.study import StudyConfig, run_study
from tests.study.conftest import TINY_STUDY

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5  # metric difference allowed (float sums in another order)


def _launch(tmp_path, study: Path, home: Path) -> subprocess.CompletedProcess:
    probe = tmp_path / "probe"
    probe.mkdir()
    env = {**os.environ, "SAFEADAPT_HOME": str(home), "PROBE_DIR": str(probe),
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}  # fmt: skip
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(ROOT / "tests" / "study" / "launch_probe.py"), "run", str(study),
               "--no-progress"]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_two_processes_give_the_single_process_records_and_one_writer(tmp_path):
    home = tmp_path / "home"  # a cold feature cache: extraction is split between the processes
    home.mkdir()
    (home / "data").symlink_to(data_dir())
    raw = copy.deepcopy(TINY_STUDY)
    raw.update(
        {
            "task": {"builtin": "mnist", "max_train": 64, "max_eval": 40},
            "seeds": [0],
            "safety": {
                "families": ["calibration", "distortion", "corruption"],
                "corruption": {"kinds": ["gaussian_noise"], "severities": [1], "max_examples": 16},
            },  # fmt: skip
            "preflight": {"checks": ["shift"], "max_per_set": 60, "n_permutations": 50},
            "output": str(tmp_path / "two"),
        }
    )
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(raw))
    done = _launch(tmp_path, study, home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("Report:") == 1  # one process speaks

    writes = {
        rank: (tmp_path / "probe" / f"writes-{rank}.txt").read_text().split()
        if (tmp_path / "probe" / f"writes-{rank}.txt").is_file()
        else []
        for rank in ("0", "1")
    }
    assert writes["1"] == []  # the second process wrote nothing
    assert any(p.endswith("record.json") for p in writes["0"])
    assert any("/features/" in p for p in writes["0"])  # the cache, written once
    written = [p for p in writes["0"] if "/features/" not in p]
    assert len(written) == len(set(written))  # and each study file once

    single = run_study(
        StudyConfig.from_dict({**raw, "output": str(tmp_path / "one")}),
        show_progress=False,
        log=lambda m: None,
    )
    for record in single.runs:
        run_id = record.run_id
        two = json.loads((tmp_path / "two" / "runs" / run_id / "record.json").read_text())
        assert two["environment"]["world_size"] == 2
        for split, metrics in record.metrics.items():
            for key, value in metrics.values.items():
                assert two["metrics"][split][key] == pytest.approx(value, abs=TOLERANCE), (
                    run_id, split, key)  # fmt: skip
        history = record.info.get("history")
        if history:  # data-parallel steps equal one process's (the global batch is split)
            assert two["info"]["history"][-1]["train_loss"] == pytest.approx(
                history[-1]["train_loss"], abs=TOLERANCE
            )
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["recommendation"]["variant"] == single.summary.recommendation.variant

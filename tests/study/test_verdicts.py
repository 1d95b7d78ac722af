"""Verdicts that never look at test data, intervals in every output, per-example predictions,
and results keyed on the data's content."""

import json

import numpy as np
import pandas as pd
import pytest

from safeadapt.study import StudyConfig, run_study


@pytest.fixture(scope="module")
def csv_sources(tmp_path_factory):
    """A real text task as files: VADER movie snippets (train / test) and tweets (OOD)."""
    from safeadapt.data import load_builtin_task

    root = tmp_path_factory.mktemp("data")
    task = load_builtin_task("vader-sentiment").subsample(max_train=160, max_eval=80, seed=0)
    names = task.label_names

    def write(split, name, flip=False):
        labels = [names[(1 - y) if flip else y] for y in split.labels]
        path = root / f"{name}.csv"
        pd.DataFrame({"text": list(split.inputs), "label": labels}).to_csv(path, index=False)
        return str(path)

    ood_name = next(iter(task.ood))
    return {
        "train": write(task.train, "train"),
        "test": write(task.test, "test"),
        "test_flipped": write(task.test, "test_flipped", flip=True),
        "ood": write(task.ood[ood_name], "ood"),
    }


def _study(sources, out, test_key="test"):
    return StudyConfig.from_dict(
        {
            "name": "verdicts",
            "task": {
                "train": sources["train"],
                "test": sources[test_key],
                "ood": {"tweets": sources["ood"]},
            },
            "backbone": {"name": "minilm", "options": {"max_length": 24}},
            "protocols": {
                "lp": {"c_grid": {"grid": [[0.001], [0.01, 0.1, 1.0]]}},
                "ft": {"epochs": 2, "batch_size": 32, "lr": 1e-4, "head_lr": 1e-2},
            },
            "seeds": [0],
            "safety": {"adversarial": False, "corruption": False, "forgetting": False},
            "preflight": {"checks": []},
            "output": str(out),
        }
    )


def _run(config, cache):
    return run_study(config, cache=cache, show_progress=False, log=lambda m: None)


def _choices(result):
    """Everything a choice produced: per run the protocol's picks, and the recommendation."""
    runs = {
        r.variant: {
            "info": {k: v for k, v in r.info.items() if k not in ("train_seconds",)},
            "selection": {k: m.values for k, m in r.selection.items()},
        }
        for r in result.runs
    }
    rec = result.summary.recommendation
    return runs, rec.variant, {k: v.variant for k, v in rec.rules.items()}


def test_flipping_the_test_labels_changes_no_choice(csv_sources, tmp_path, feature_cache):
    first = _run(_study(csv_sources, tmp_path / "a"), feature_cache)
    flipped = _run(_study(csv_sources, tmp_path / "b", "test_flipped"), feature_cache)
    assert flipped.ran == len(first.runs)  # new data content: nothing reused
    a, b = _choices(first), _choices(flipped)
    for variant in a[0]:
        info_a, info_b = a[0][variant]["info"], b[0][variant]["info"]
        for key in set(info_a) & {"C", "best_epoch", "val_accuracy", "history", "lp_sweep"}:
            if key == "history":  # every validation number per epoch, not the timings
                assert [h["val_accuracy"] for h in info_a[key]] == pytest.approx(
                    [h["val_accuracy"] for h in info_b[key]], abs=1e-6
                )
            elif key == "lp_sweep":
                assert info_a[key] == info_b[key]
            else:
                assert info_a[key] == pytest.approx(info_b[key], abs=1e-6), (variant, key)
        for split, metrics in a[0][variant]["selection"].items():
            assert metrics == pytest.approx(b[0][variant]["selection"][split], abs=1e-6)
    assert a[1:] == b[1:]
    # the reported test numbers did move: the flip reached the report, not the choices
    acc = {r.variant: r.test.accuracy for r in first.runs}
    acc_flipped = {r.variant: r.test.accuracy for r in flipped.runs}
    for v in acc:
        assert acc_flipped[v] == pytest.approx(1 - acc[v], abs=1e-6)

    # outputs carry intervals, verdicts and per-example predictions that match the record
    out = tmp_path / "a"
    csv = pd.read_csv(out / "results.csv")
    assert {"accuracy_ci_low", "accuracy_ci_high", "role"} <= set(csv.columns)
    report = csv[csv["role"] == "report"]
    assert (report["accuracy_ci_low"] <= report["accuracy"]).all()
    assert (report["accuracy"] <= report["accuracy_ci_high"]).all()
    variants = pd.read_csv(out / "variants.csv")
    assert {"value", "ci_low", "ci_high"} <= set(variants.columns)
    for r in first.runs:
        folder = out / "runs" / r.run_id
        pred = pd.read_parquet(folder / "predictions.parquet")
        assert set(pred["split"]) == {"val", "test", "ood:tweets", "ood-val:tweets"}
        for split, metrics in {**r.metrics, **r.selection}.items():
            rows = pred[pred["split"] == split]
            assert (rows["pred"] == rows["label"]).mean() == pytest.approx(metrics.accuracy)
            probs = np.stack(rows["probs"].to_numpy())
            np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    combined = pd.read_parquet(out / "predictions.parquet")
    assert set(combined["run_id"]) == {r.run_id for r in first.runs}
    rec = first.summary.recommendation
    assert rec.selection == "ood-val" and set(rec.rules) == {"ood-val", "id-val"}
    assert {p.other for p in rec.pairwise} == {v.variant for v in first.summary.variants} - {
        rec.variant
    }
    assert all(p.verdict in ("better", "worse", "not distinguishable") for p in rec.pairwise)
    html = (out / "report.html").read_text()
    assert 'id="splits-seen"' in html and "id='pairwise'" in html
    assert "Where they disagree" in html
    summary = json.loads((out / "summary.json").read_text())
    pick = next(v for v in summary["variants"] if v["variant"] == rec.variant)
    s = pick["scores"]["id_accuracy"]
    assert s["ci_low"] <= s["mean"] <= s["ci_high"] and s["ci_method"] == "wilson"


def test_an_edited_data_file_is_not_served_from_old_runs(csv_sources, tmp_path, feature_cache):
    import os
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    sources = {k: str(shutil.copy(v, data / os.path.basename(v))) for k, v in csv_sources.items()}
    config = StudyConfig.from_dict(
        {
            "name": "edited",
            "task": {"train": sources["train"], "test": sources["test"]},
            "backbone": {"name": "minilm", "options": {"max_length": 24}},
            "protocols": {"lp": {}},
            "safety": False,
            "preflight": {"checks": []},
            "output": str(tmp_path / "out"),
        }
    )
    first = _run(config, feature_cache)
    stat = os.stat(sources["test"])
    shutil.copy(sources["test_flipped"], sources["test"])  # same path, same size
    os.utime(sources["test"], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    second = _run(config, feature_cache)
    assert second.skipped == 0 and second.ran == 1
    acc = first.runs[0].test.accuracy
    assert second.runs[0].test.accuracy == pytest.approx(1 - acc, abs=1e-6)


def test_a_summary_without_per_example_outputs_still_recommends(tiny_study, feature_cache):
    """Records from elsewhere (no predictions.parquet): no intervals, no verdicts, a pick."""
    from safeadapt.study.recommend import summarize

    tiny_study["protocols"] = {"lp": {}, "lp-c": {"protocol": "lp", "c_grid": [0.01]}}
    tiny_study["seeds"] = [0]
    tiny_study["safety"] = False
    tiny_study["preflight"] = {"checks": []}
    config = StudyConfig.from_dict(tiny_study)
    result = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    summary = summarize(result.runs, config, config.task.load(), None)
    assert summary.recommendation.variant in {"lp", "lp-c"}
    assert summary.recommendation.pairwise == ()
    assert all(not s.has_interval for v in summary.variants for s in v.scores.values())

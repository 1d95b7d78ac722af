"""The overwriting-pretrained-bias experiment: data, metrics, and a tiny real run that resumes."""

import json

import numpy as np
import pytest

from safeadapt.bias import phi
from safeadapt.bias.overwrite import (
    OverwriteConfig,
    cell_metrics,
    colourise,
    curated_sets,
    mean_over_seeds,
    overwrite_figure,
    overwrite_table,
    pools,
    run_overwrite,
)
from safeadapt.errors import CheckpointError, InvalidConfig

TINY = {
    "source": "mnist",
    "image_size": 32,
    "bias_size": 200,
    "bias_steps": 4,
    "finetune_size": 120,
    "correlations": (1.0, 0.0),
    "minority_shares": (0.25,),
    "ft_steps": 2,
    "test_per_cell": 40,
}


def test_colourise_tints_a_copy():
    grey = np.full((2, 4, 4), 200, dtype=np.uint8)
    rgb = colourise(grey, ["red", "green"])
    assert rgb.shape == (2, 4, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0, 0]) == (200, 20, 20) and tuple(rgb[1, 0, 0]) == (20, 200, 20)
    assert np.all(grey == 200)
    with pytest.raises(InvalidConfig, match="one colour each"):
        colourise(grey, ["red"])


def test_cell_metrics_of_a_colour_shortcut_and_of_a_perfect_model():
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    colours = np.array(["red", "green"] * 4)
    by_colour = (colours == "red").astype(int)  # "red means label 1"
    m = cell_metrics(labels, by_colour, colours)
    assert m["accuracy"] == 0.5 and m["worst_group_accuracy"] == 0.0
    assert m["group_gap"] == 1.0 and m["tpr_gap"] == 1.0
    perfect = cell_metrics(labels, labels, colours)
    assert (
        perfect["worst_group_accuracy"] == 1.0 and perfect["group_gap"] == perfect["tpr_gap"] == 0
    )
    with pytest.raises(InvalidConfig, match="no red example"):
        cell_metrics(
            labels[colours == "green"], labels[colours == "green"], colours[colours == "green"]
        )


def test_table_averages_over_seeds():
    base = {"backbone": "biased", "protocol": "lp", "sweep": "correlation", "level": 0.5}
    rows = [
        {
            **base,
            "seed": 0,
            "accuracy": 0.8,
            "worst_group_accuracy": 0.6,
            "group_gap": 0.3,
            "tpr_gap": 0.2,
        },
        {
            **base,
            "seed": 1,
            "accuracy": 0.6,
            "worst_group_accuracy": 0.2,
            "group_gap": 0.5,
            "tpr_gap": 0.4,
        },
    ]
    (mean,) = mean_over_seeds(rows)
    assert mean["seeds"] == 2 and mean["worst_group_accuracy"] == pytest.approx(0.4)
    assert mean["group_gap"] == pytest.approx(0.4) and mean["tpr_gap"] == pytest.approx(0.3)
    assert "0.400 0.400 0.300" in overwrite_table(rows)


def test_pools_and_curated_sets_hit_their_targets():
    config = OverwriteConfig(**{**TINY, "correlations": (1.0, 0.5, 0.0)})
    pool = pools(config)
    test = pool["test"]
    cells = {(g, y) for g, y in zip(test.groups, test.labels, strict=True)}
    assert len(test) == 4 * 40 and len(cells) == 4
    assert abs(phi(test.labels, test.groups, "red")) < 1e-9  # balanced: no correlation
    sets = list(curated_sets(config, pool))
    assert [(s, lv) for s, lv, _, _ in sets] == [
        ("correlation", 1.0),
        ("correlation", 0.5),
        ("correlation", 0.0),
        ("minority share", 0.25),
    ]
    for sweep, level, train, val in sets:
        assert len(train) == 120 and len(val) == 30
        if sweep == "correlation":
            assert abs(phi(train.labels, train.groups, "red") - level) < 0.05
        else:
            assert np.mean(np.asarray(train.groups) == "green") == pytest.approx(level, abs=0.01)
    with pytest.raises(InvalidConfig, match="minority_shares"):
        OverwriteConfig(minority_shares=(0.7,))


def test_tiny_experiment_runs_resumes_and_refuses_a_corrupt_backbone(tmp_path):
    config = OverwriteConfig(**TINY)
    logs: list[str] = []
    rows = run_overwrite(config, tmp_path, log=logs.append)
    # 3 finetuning sets x 2 backbones x 2 protocols
    assert len(rows) == 12 and len((tmp_path / "rows.jsonl").read_text().splitlines()) == 12
    assert any("biased backbone on the balanced test" in line for line in logs)
    for r in rows:
        assert 0 <= r["worst_group_accuracy"] <= r["accuracy"] <= 1
    # fully correlated finetuning data: every model keys on colour -> a conflicting cell fails
    fully = [r for r in rows if r["sweep"] == "correlation" and r["level"] == 1.0]
    assert all(r["group_gap"] > 0.5 for r in fully)
    table = overwrite_table(rows)
    assert "correlation 1" in table and "minority share 0.25" in table
    assert overwrite_figure(rows)[:4] == b"\x89PNG"

    # resume: nothing is re-run, a torn last line is ignored
    with (tmp_path / "rows.jsonl").open("a") as fh:
        fh.write('{"key": "torn')
    logs.clear()
    again = run_overwrite(config, tmp_path, log=logs.append)
    assert len(again) == 12 and not any(
        "worst group" in line and "biased backbone" not in line for line in logs
    )

    # a corrupt biased backbone is a clear error, not an unpickling attempt
    (tmp_path / "rows.jsonl").write_text(json.dumps({"key": "other"}) + "\n")
    weights = next(tmp_path.glob("biased-backbone-*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="delete it"):
        run_overwrite(config, tmp_path, log=logs.append)

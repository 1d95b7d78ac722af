"""Training settings nest by concern (optimizer, stopping, tune, regularizer); the flat spellings
of earlier releases keep working through one mapping, and run keys and records keep their form."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from safeadapt.config import build_config, record_form
from safeadapt.errors import InvalidConfig
from safeadapt.protocols import make_protocol
from safeadapt.protocols.regularizers import LDIFSSettings
from safeadapt.protocols.train_config import FLAT_SPELLINGS, TrainConfig
from safeadapt.protocols.tuning import LoRA

GOLDEN = Path(__file__).parents[1] / "study" / "golden" / "v0" / "record.json"


def test_train_config_has_at_most_twelve_settings_and_every_flat_spelling_has_a_place():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert len(names) <= 12, names
    for flat, (field, _, _) in FLAT_SPELLINGS.items():
        assert field in names and flat not in names, flat


def test_flat_and_nested_spellings_build_the_same_config():
    flat = {"tune": "lora", "lora_r": 4, "lora_alpha": 8, "weight_decay": 0.0, "patience": 3,
            "regularizer": "ldifs", "reg_weight": 2.0, "reg_layers": ["embeddings"]}  # fmt: skip
    nested = {
        "tune": {"lora": {"r": 4, "alpha": 8}},
        "optimizer": {"weight_decay": 0.0},
        "stopping": {"patience": 3},
        "regularizer": {"ldifs": {"weight": 2.0, "layers": ["embeddings"]}},
    }
    a, b = make_protocol("ft", flat).config, make_protocol("ft", nested).config
    assert a == b
    assert a.tune == LoRA(r=4, alpha=8) and a.regularizer == LDIFSSettings(2.0, ("embeddings",))
    # a partial nested mapping keeps the protocol's own defaults (FT's larger head learning rate)
    assert a.optimizer.head_lr == 1e-3 and a.optimizer.grad_clip == 1.0
    # the override path (make_protocol(name, config, **overrides)) takes both spellings too
    assert make_protocol("ft", nested, lora_r=16).config.tune.r == 16
    assert make_protocol("ft", flat, tune={"lora": {"r": 16}}).config.tune.r == 16


def test_records_keep_the_flat_form_of_earlier_releases():
    """A stored record's settings build a config whose record form is that same dict, so run
    keys and reuse are unchanged (the record is from the golden study, before the nesting)."""
    stored = json.loads(GOLDEN.read_text())
    config = make_protocol(stored["protocol"], stored["config"]).config
    assert json.loads(json.dumps(record_form(config))) == stored["config"]
    for name in ("ft", "l2-sp", "ldifs", "wise-ft", "soup-ft"):
        form = record_form(make_protocol(name).config)
        assert set(FLAT_SPELLINGS) <= set(form) and "optimizer" not in form, name
        assert make_protocol(name, form).config == make_protocol(name).config, name
    assert record_form(make_protocol("ldifs").config)["reg_weight"] == 10.0
    assert record_form(make_protocol("l2-sp").config)["weight_decay"] == 0.0


def test_a_study_spelled_either_way_plans_the_same_runs(tmp_path):
    from safeadapt.study.config import load_study
    from safeadapt.study.plan import expand_runs

    def plan(settings):
        study = {"name": "s", "task": {"builtin": "mnist", "max_train": 50, "max_eval": 50},
                 "protocols": {"ft": settings}, "output": str(tmp_path / "out")}  # fmt: skip
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        return [r.run_id for r in expand_runs(load_study(path), "image")]

    flat = plan({"tune": "last-k", "last_k": 1, "grad_clip": 0.5, "lr": {"grid": [1e-5, 1e-4]}})
    nested = plan({"tune": {"last-k": {"k": 1}}, "optimizer": {"grad_clip": 0.5},
                   "lr": {"grid": [1e-5, 1e-4]}})  # fmt: skip
    assert flat == nested and len(flat) == 2
    assert plan({"tune": {"last-k": {"k": 2}}}) != plan({"tune": {"last-k": {"k": 1}}})


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"lora_r": 4}, "'lora_r' applies to tune: lora, and tune is all: it would not act"),
        ({"reg_weight": 3.0}, "'reg_weight' applies to a regularizer, and regularizer is null"),
        ({"tune": {"lora": {"r": 4}}, "lora_r": 8}, "'lora_r' and tune both give 'r'; keep one"),
        ({"tune": {"lora": {"alpah": 4}}}, "'lora': unknown setting 'alpah'. Did you mean 'alpha'"),
        ({"tune": {"lora": {"r": 0}}}, "'tune.lora.r' must be an integer >= 1"),
        (
            {"tune": "lorra"},
            "'tune' must be one of all, bitfit, last-k, lora; .*Did you mean 'lora'",
        ),
        ({"tune": None}, "'tune' may not be null"),
        ({"tune": {"lora": {}, "bitfit": {}}}, "'tune' must be one of .* as a name or as"),
        ({"optimizer": {"weight_decay": -1}}, "'optimizer.weight_decay' must be >= 0"),
        ({"optimizer": 3}, "'optimizer' must be a mapping of its settings"),
        ({"regularizer": {"ldifs": {"weight": -2}}}, "'regularizer.ldifs.weight' must be >= 0"),
    ],
)
def test_a_wrong_nested_setting_is_named_where_it_is(settings, message):
    with pytest.raises(InvalidConfig, match=message):
        make_protocol("ft", settings)


def test_an_unused_methods_default_is_accepted_as_it_changes_nothing():
    # the flat form of any record lists every method's settings at their defaults
    assert build_config(TrainConfig, {"lora_r": 8, "last_k": 2, "reg_layers": None}, "t") == (
        TrainConfig()
    )
    assert make_protocol("ldifs", {"regularizer": None}).config.regularizer is None  # = LP-FT


def test_run_keys_of_an_earlier_release_stay_the_same(tmp_path):
    """Run ids planned by the release before the nesting and ``task.extra_train`` (computed then
    for this study and fixed content fingerprints): a study reuses the runs it already has."""
    from safeadapt.study.config import load_study
    from safeadapt.study.plan import expand_runs

    study = {"name": "pinned", "task": {"builtin": "mnist", "max_train": 50, "max_eval": 50},
             "protocols": {"lp": {}, "ft": {"epochs": 1, "head_lr": 1e-3, "tune": "lora",
                                            "lora_r": 4}, "ldifs": {"reg_weight": 3.0}},
             "seeds": [0], "output": str(tmp_path / "out")}  # fmt: skip
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    content = {"task": "t", "backbone": "b"}
    ids = sorted(r.run_id for r in expand_runs(load_study(path), "image", content))
    # re-pinned for issue 38 (safety metrics redefined: records made before are redone, not
    # mixed with the new numbers); the nesting and extra_train left these keys alone before
    assert ids == ["ft-seed0-34f9fbba26", "ldifs-seed0-dc9e4bc83b", "lp-seed0-a0056a3076"]
    study["task"]["extra_train"] = {"more": "rows.csv"}  # a setting that is given: a new key
    path.write_text(yaml.safe_dump(study))
    assert sorted(r.run_id for r in expand_runs(load_study(path), "image", content)) != ids


def test_a_late_setting_at_its_default_leaves_the_run_keys_alone(tmp_path):
    """The forgetting family's ``reference_data`` came after runs were keyed: left at its
    default, the keys are the earlier ones; given, it is a new key."""
    from safeadapt.study.config import StudyConfig
    from safeadapt.study.plan import expand_runs

    raw = {"name": "s", "task": {"builtin": "digits"}, "protocols": {"lp": {}}}
    content = {"task": "t", "backbone": "b"}
    plain = expand_runs(StudyConfig.from_dict(raw), "image", content)[0].key
    empty = {**raw, "safety": {"forgetting": {"reference_data": {}}}}
    assert expand_runs(StudyConfig.from_dict(empty), "image", content)[0].key == plain
    given = {**raw, "safety": {"forgetting": {"reference_data": {
        "mine": {"train": "a.csv", "test": "b.csv"}}}}}  # fmt: skip
    assert expand_runs(StudyConfig.from_dict(given), "image", content)[0].key != plain

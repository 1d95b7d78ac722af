"""Study configs: YAML in, one-line errors naming the key and the fix, grids and run hashes."""

import pytest
import yaml

from safeadapt.errors import InvalidConfig
from safeadapt.study import EXAMPLE_YAML, StudyConfig, expand_runs, load_study


def test_the_example_yaml_is_a_valid_study(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(EXAMPLE_YAML)
    config = load_study(path)
    runs = expand_runs(config, "text")
    # lp + ft + lp-ft with a 2-point lr grid, x 2 seeds
    assert len(runs) == (1 + 1 + 2) * 2
    assert {r.variant for r in runs} == {"lp", "ft", "lp-ft[lr=1e-05]", "lp-ft[lr=3e-05]"}
    assert len({r.run_id for r in runs}) == len(runs)


def test_run_keys_change_with_what_changes_the_result(tiny_study):
    a = expand_runs(StudyConfig.from_dict(tiny_study), "image")
    again = expand_runs(StudyConfig.from_dict(tiny_study), "image")
    assert [r.key for r in a] == [r.key for r in again]
    tiny_study["protocols"]["ft"]["lr"] = 3e-4
    b = expand_runs(StudyConfig.from_dict(tiny_study), "image")
    assert a[0].key == b[0].key  # lp untouched
    assert a[2].key != b[2].key  # ft changed
    tiny_study["task"]["max_train"] = 80
    c = expand_runs(StudyConfig.from_dict(tiny_study), "image")
    assert a[0].key != c[0].key


def test_protocol_alias_and_list_shorthand(tiny_study):
    tiny_study["protocols"] = {"ft-slow": {"protocol": "ft", "lr": 1e-6}, "lp": {}}
    config = StudyConfig.from_dict(tiny_study)
    assert [(p.label, p.protocol) for p in config.protocols] == [("ft-slow", "ft"), ("lp", "lp")]
    tiny_study["protocols"] = ["lp", "lp-ft"]
    assert [p.label for p in StudyConfig.from_dict(tiny_study).protocols] == ["lp", "lp-ft"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s["protocols"].update({"lp-fft": {}}), "Did you mean 'lp-ft'"),
        (lambda s: s.update({"seed": [0]}), "unknown key 'seed'. Did you mean 'seeds'"),
        (lambda s: s["task"].update({"max_trian": 5}), "unknown setting 'max_trian'"),
        (lambda s: s["protocols"]["ft"].update({"lr": -1}), "study protocol 'ft'.*'lr'"),
        (lambda s: s["protocols"]["ft"].update({"lr": {"grid": []}}), "'lr.grid' must be"),
        (lambda s: s["safety"]["adversarial"].update({"steps": 0}), "'adversarial' 'steps'"),
        (lambda s: s["safety"].update({"adv_steps": 0}), "flat setting.* adv_steps"),
        (lambda s: s.update({"seeds": [0, 0]}), "distinct integers"),
        (lambda s: s["task"].update({"builtin": "mnsit"}), "Did you mean 'mnist'"),
        (lambda s: s["task"].update({"train": "x.csv"}), "either 'builtin"),
        (lambda s: s.pop("protocols"), "missing required key 'protocols'"),
    ],
)
def test_bad_configs_name_the_key(tiny_study, edit, match):
    edit(tiny_study)
    with pytest.raises(InvalidConfig, match=match):
        StudyConfig.from_dict(tiny_study)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(InvalidConfig, match="does not exist"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(InvalidConfig, match="not valid YAML"):
        load_study(bad)


def test_config_round_trips_through_yaml(tiny_study, tmp_path):
    config = StudyConfig.from_dict(tiny_study)
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    again = load_study(path)
    assert sorted(r.key for r in expand_runs(again, "image")) == sorted(
        r.key for r in expand_runs(config, "image")
    )


def test_safety_routes_family_entries_and_keeps_the_old_switches():
    """`safety:` holds one entry per registered family; the former booleans (adversarial /
    detection / ...: false) turn the families off and the former flat settings (adv_steps,
    reference_max_train, ...) reach their family."""
    from safeadapt.errors import InvalidConfig
    from safeadapt.study.config import _safety_config

    cfg = _safety_config(
        {
            "detection": False,
            "adv_steps": 3,
            "conformal": {"coverage": 0.8},
            "forgetting": {"max_eval": 50},
            "reference_max_train": 70,
            "corruption": False,
            "corruption_max_examples": 9,
        }
    )
    assert cfg.families["detection"] is None and cfg.families["adversarial"].steps == 3
    assert cfg.families["conformal"].coverage == 0.8 and cfg.families["flips"] is not None
    assert (cfg.families["forgetting"].max_train, cfg.families["forgetting"].max_eval) == (70, 50)
    assert cfg.families["corruption"] is None  # off: its old budget does not turn it on
    with pytest.raises(InvalidConfig, match="Did you mean 'detection'"):
        _safety_config({"detectoin": False})
    only = _safety_config({"families": ["calibration", "adversarial"], "adversarial": {"steps": 2}})
    assert [f for f, c in only.families.items() if c is not None] == ["calibration", "adversarial"]
    assert only.families["adversarial"].steps == 2
    with pytest.raises(InvalidConfig, match="unknown family 'calibraton'"):
        _safety_config({"families": ["calibraton"]})
    with pytest.raises(InvalidConfig, match="'families' is a list of family names or a mapping"):
        _safety_config({"families": "calibration"})


@pytest.mark.parametrize(
    "edit, match",
    [
        ({"seeds": [2**63]}, "'seeds' entry must be an integer from 0 to 4,294,967,295"),
        ({"seeds": [-1]}, "'seeds' entry must be an integer from 0"),
        ({"task": {"builtin": "mnist", "seed": 2**40}}, "'task.seed' must be an integer from 0"),
        ({"preflight": {"seed": -3}}, "'preflight.seed' must be an integer from 0"),
        ({"task": {"builtin": "mnist", "max_train": 10**30}}, "must lie within"),
        ({"task": {"builtin": "coloured", "options": {"size": 1_000_000}}}, "size"),
        ({"task": {"builtin": "coloured", "options": {"test_per_cell": 10**6}}}, "test_per_cell"),
    ],
)
def test_validate_bounds_every_seed_integer_and_task_size_before_allocating(
    tiny_study, edit, match, tmp_path
):
    """Issue 37: a seed beyond what the generators take, an integer beyond 2**53, a built-in
    task's size beyond its data (coloured at 1,000,000 allocated 8.8 GiB) -- refused by
    validate (exit 2) before any data is drawn."""
    import resource

    from typer.testing import CliRunner

    from safeadapt.cli import app

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**tiny_study, **edit}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and match in " ".join(result.output.split()), result.output
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500  # nothing of the requested size was allocated


def test_yaml_boolean_words_as_keys_are_named_not_called_duplicates(tmp_path):
    """Issue 37: YAML 1.1 reads `yes:` and `on:` as true; the error names the word and the
    fix (quote it), where it said 'duplicate key True'."""
    for word in ("yes", "on", "off", "no"):
        path = tmp_path / f"{word}.yaml"
        path.write_text(f"name: t\ntask: {{builtin: mnist}}\nprotocols: {{lp: {{}}}}\n{word}: 1\n")
        with pytest.raises(InvalidConfig, match=f"key '{word}' on line 4 reads as .* quote it"):
            load_study(path)


def test_errors_name_the_fix_that_works(tmp_path):
    """Issue 37 item 8: look-alike protocol labels (Latin p, Cyrillic р; case; spacing) are
    refused as one label; a folder of CSV files as a split names the fix; forgetting
    reference_data naming a missing column is refused by validate, before any training."""
    from typer.testing import CliRunner

    from safeadapt.cli import app

    for other in ("l\u0440", "LP", "l p"):
        raw = {
            "name": "t",
            "task": {"builtin": "mnist"},
            "protocols": {"lp": {}, other: {"protocol": "lp"}},
        }
        with pytest.raises(InvalidConfig, match="look the same"):
            expand_runs(StudyConfig.from_dict(raw), "image")
    tables = tmp_path / "tables"
    tables.mkdir()
    for name in ("a.csv", "b.csv"):
        (tables / name).write_text("text,label\n" + "".join(
            f"{name}{i},{('pos', 'neg')[i % 2]}\n" for i in range(12)))  # fmt: skip
    ref = tmp_path / "ref.csv"
    ref.write_text("txt,label\n" + "".join(f"w{i},{'xy'[i % 2]}\n" for i in range(8)))
    cases = {
        "folder of table files": {"task": {"train": str(tables), "test": str(tables / "a.csv")}},
        "'mine' does not read: Split 'train' has no text column 'text'": {
            "task": {"train": str(tables / "a.csv"), "test": str(tables / "b.csv")},
            "safety": {"forgetting": {"reference_tasks": [], "reference_data": {
                "mine": {"train": str(ref), "test": str(ref)}}}},
        },
    }  # fmt: skip
    for message, extra in cases.items():
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"name": "t", "protocols": {"lp": {}}, **extra}))
        result = CliRunner().invoke(app, ["validate", str(path)])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output

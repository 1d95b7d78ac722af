"""The bad-input catalogue: each case ends in one ``error:`` line that names the input, a
non-zero exit code and no traceback -- or, for the silent-wrong-result cases, the right result."""

import copy
import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from safeadapt.cli import app

runner = CliRunner()

BASE = {
    "name": "bad",
    "task": {"builtin": "mnist", "max_train": 60, "max_eval": 40},
    "backbone": {"name": "efficientnet-lite0", "options": {"image_size": 32}},
    "protocols": {"lp": {}},
    "safety": False,
    "preflight": {"checks": []},
}


def _invoke(*args):
    out = runner.invoke(app, [str(a) for a in args])
    text = out.output
    assert "Traceback" not in text, text
    return out.exit_code, text


def _study(tmp_path, **changes):
    raw = copy.deepcopy(BASE)
    raw["output"] = str(tmp_path / "out")
    for key, value in changes.items():
        parts = key.split(".")
        target = raw
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"protocols": {"ft": {"lr": True}}}, "'lr' must be a number; got True"),
        ({"save_models": "false"}, "'save_models' must be true or false"),
        ({"name": ".."}, "'name' must be one safe folder name"),
        ({"task.ood": ["a.csv"]}, "'task.ood' must map names to sources"),
        ({"output": 5}, "'output' must be a folder path"),
        ({"protocols": {"ft": [1, 2]}}, "the settings of 'ft' must be a mapping"),
        ({"safety": {"adversarial": {"eps": "0.1"}}}, "'eps' must be a list or null"),
        ({"preflight": {"n_permutations": -5}}, "'preflight.n_permutations' must be an integer"),
        ({"safety": {"corruption": {"kinds": ["fog"]}}}, "'kinds' entry 0 must be one of"),
        (
            {"safety": {"corruption_severities": [9]}},
            "'severities' entry 0 must be an integer in 1..5",
        ),  # old form
        ({"backbone": {"name": "efficientnet-lite0", "options": {"size": 3}}}, "no option 'size'"),
        ({"backbone": {"name": "minilm", "options": {"max_length": 1000}}}, "exceeds"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, change, expected):
    raw_changes = {k: v for k, v in change.items()}
    if "task.ood" in raw_changes:  # a file task, so that 'ood' applies
        path = _study(tmp_path, task={"train": "a.csv", "test": "a.csv", "ood": change["task.ood"]})
    else:
        path = _study(tmp_path, **raw_changes)
    code, text = _invoke("validate", path)
    assert code == 2 and "error:" in text, text
    assert expected in " ".join(text.split()), text


def test_a_yaml_1e_minus_5_is_read_as_the_number(tmp_path):
    path = _study(tmp_path, protocols={"ft": {"lr": "1e-5"}})
    code, text = _invoke("validate", path)
    assert code == 0, text


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"name: caf\xe9\n", "is not UTF-8 text"),
        (b'a: &a ["x", "x"]\nb: &b [*a, *a]\nname: x\n', "aliases (*name) are not allowed"),
    ],
)
def test_hostile_or_broken_yaml(tmp_path, content, expected):
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    code, text = _invoke("validate", path)
    assert code == 2 and expected in text


def test_a_directory_where_a_yaml_is_expected(tmp_path):
    code, text = _invoke("validate", tmp_path)
    assert code == 2 and "is a directory" in text


def test_init_into_a_missing_folder(tmp_path):
    code, text = _invoke("init", tmp_path / "nope" / "study.yaml")
    assert code == 2 and "does not exist" in text


def _csv_study(tmp_path, train_bytes):
    (tmp_path / "train.csv").write_bytes(train_bytes)
    return _study(
        tmp_path,
        task={"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "train.csv")},
        backbone="minilm",
    )


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", "is empty"),
        ("text,label\ncaf\xe9 ok,1\n".encode("latin-1"), "is not UTF-8 text"),
        (b"text,label\na,1\nb,0,extra,more\n", "could not be parsed as CSV"),
        (b"text;label\na;1\nb;0\n", "its columns are ['text;label']"),
    ],
)
def test_bad_csv_files(tmp_path, content, expected):
    code, text = _invoke("validate", _csv_study(tmp_path, content))
    assert code == 2 and expected in text, text


def test_a_folder_that_is_not_an_image_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    path = _study(
        tmp_path,
        task={
            "train": str(tmp_path / "empty"),
            "test": str(tmp_path / "empty"),
            "image_column": "image",
        },
    )
    code, text = _invoke("validate", path)
    assert code == 2 and "not a readable image folder" in text


def test_a_study_never_writes_into_a_foreign_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("my own numbers\n")
    code, text = _invoke("run", _study(tmp_path), "--no-progress")
    assert code == 2 and "already holds files safeadapt did not write" in text
    assert (out / "results.csv").read_text() == "my own numbers\n"


def test_curate_share_must_be_a_number():
    code, text = _invoke("curate", "--task", "mnist", "--group-share", "a=x")
    assert code == 2 and "the share must be a number" in text


def test_an_empty_list_record_is_treated_as_corrupt(tmp_path):
    from safeadapt.study import StudyConfig
    from safeadapt.study.freshness import Content
    from safeadapt.study.plan import expand_runs
    from safeadapt.study.store import RunStore

    config = StudyConfig.from_dict({**BASE, "output": str(tmp_path / "out")})
    (spec,) = expand_runs(config, "image", Content(data="x", backbone="y"))
    store = RunStore(tmp_path / "out")
    for _ in range(2):  # every corrupt copy is kept
        store.folder(spec).mkdir(parents=True, exist_ok=True)
        (store.folder(spec) / "record.json").write_text(json.dumps([]))
        assert store.load(spec) is None
    assert len(list(store.folder(spec).glob("record.json.corrupt-*"))) == 2


def test_a_run_locked_by_another_process_is_not_run_twice(tmp_path):
    from safeadapt.study import StudyConfig
    from safeadapt.study.freshness import Content
    from safeadapt.study.plan import expand_runs
    from safeadapt.study.store import RunStore

    config = StudyConfig.from_dict({**BASE, "output": str(tmp_path / "out")})
    (spec,) = expand_runs(config, "image", Content(data="x", backbone="y"))
    store = RunStore(tmp_path / "out")
    with store.lock(spec, wait=False) as first:
        assert first
        with store.lock(spec, wait=False) as second:  # a second open file = another holder
            assert not second
    with store.lock(spec, wait=False) as again:  # released
        assert again


def test_csv_label_column_names_are_checked(tmp_path):
    pd.DataFrame({"text": ["a", "b"], "y": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    path = _study(
        tmp_path,
        task={"train": str(tmp_path / "t.csv"), "test": str(tmp_path / "t.csv")},
        backbone="minilm",
    )
    code, text = _invoke("validate", path)
    assert code == 2 and "no label column 'label'" in text


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_a_table_of_image_paths_is_read_relative_to_its_folder(tmp_path, ext):
    from PIL import Image

    from safeadapt.data import load_task

    def table(rows, name):
        frame = pd.DataFrame(rows)
        path = tmp_path / f"{name}.{ext}"
        frame.to_csv(path, index=False) if ext == "csv" else frame.to_parquet(path)
        return str(path)

    (tmp_path / "img").mkdir()
    rows = []
    for i in range(12):
        Image.new("RGB", (16, 16), (20 * i, 0, 0)).save(tmp_path / "img" / f"{i}.png")
        rows.append({"path": f"img/{i}.png", "label": "a" if i % 2 else "b"})
    train = table(rows, "train")
    task = load_task(train, train, image_column="path")
    assert task.train.inputs.shape[1:] == (16, 16, 3) and task.label_names == ("a", "b")
    for image, label in zip(task.train.inputs, task.train.labels, strict=True):
        i = int(image[0, 0, 0]) // 20  # each row holds its own file, under its own label
        assert task.label_names[label] == ("a" if i % 2 else "b")
    rows[3]["path"] = "img/missing.png"
    bad = table(rows, "bad")
    with pytest.raises(Exception, match=r"row 3: image 'img/missing.png' does not exist"):
        load_task(bad, bad, image_column="path")


def test_an_unloadable_weights_file_is_a_clear_error(tmp_path):
    from transformers import BertConfig

    folder = tmp_path / "model"
    folder.mkdir()
    BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    ).save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    path = _study(tmp_path, backbone={"name": f"hf:{folder}"})
    code, text = _invoke("validate", path)
    assert code == 2 and "could not be loaded" in text


def test_a_hub_dataset_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    path = _study(
        tmp_path, task={"train": "hub:nobody/no-such-dataset", "test": "hub:nobody/no-such-dataset"}
    )
    code, text = _invoke("validate", path)
    assert code == 2 and "could not be loaded" in text and "Offline mode is on" in text


def test_a_hub_model_with_the_hub_out_of_reach_fails_at_once_with_the_fix(tmp_path, monkeypatch):
    """No network and no offline flag: the Hub's host is probed once (a closed local port here)
    and the model is looked up in the cache only, instead of ~25 s of retries."""
    from safeadapt import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    hub.hub_reachable.cache_clear()
    try:
        assert hub.hub_options("nobody/no-such-vit") == {"local_files_only": True}
        assert hub.hub_options(str(tmp_path)) == {}  # a local folder is never probed
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        assert hub.hub_options("nobody/no-such-vit") == {}  # behind a proxy: no direct probe
        monkeypatch.delenv("HTTPS_PROXY")
        path = _study(tmp_path, backbone={"name": "hf:nobody/no-such-vit"})
        code, text = _invoke("validate", path)
    finally:
        hub.hub_reachable.cache_clear()
    assert code == 2 and "The Hub is unreachable" in text and "local folder" in text


@pytest.mark.parametrize(
    ("task", "backbone", "expected"),
    [
        ({"builtin": "vader-sentiment", "max_train": 40, "max_eval": 20},
         {"name": "efficientnet-lite0", "options": {"image_size": 32}},
         "is an image model but the task's data is text: use a text backbone"),
        ({"builtin": "mnist", "max_train": 40, "max_eval": 20}, {"name": "minilm"},
         "is a text model but the task's data is image: use an image backbone"),
    ],
)  # fmt: skip
def test_a_backbone_of_the_other_modality_is_one_line(tmp_path, task, backbone, expected):
    code, text = _invoke("validate", _study(tmp_path, task=task, backbone=backbone))
    assert code == 2 and expected in text


def test_remote_code_is_refused_unless_the_study_opts_in(tmp_path):
    """A folder whose config asks for its own Python code (auto_map) does not run it by default."""
    import json

    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil",
                "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"},
            }
        )  # fmt: skip
    )
    (folder / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    code, text = _invoke("validate", _study(tmp_path, backbone={"name": f"hf:{folder}"}))
    assert code == 2 and "trust_remote_code" in text and "remote code ran" not in text


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    import safeadapt.study.store as store

    real = store.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = _study(tmp_path)
    monkeypatch.setattr(store.os, "fsync", full)
    code, text = _invoke("run", path, "--no-progress")
    monkeypatch.setattr(store.os, "fsync", real)
    assert code == 2 and "the disk is full" in text
    assert not list((tmp_path / "out").rglob(".*.tmp"))


def _text_files(tmp_path, train_rows, test_rows):
    pd.DataFrame(train_rows).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(test_rows).to_csv(tmp_path / "test.csv", index=False)
    return _study(
        tmp_path,
        task={"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
        backbone={"name": "minilm", "options": {"max_length": 16}},
    )


TRAIN_ROWS = {"text": [f"review number {i}" for i in range(40)], "label": [0, 1] * 20}


def test_leaked_test_rows_are_warned_and_dropped(tmp_path):
    test = {"text": ["review   number 3", "a new one", "another new"], "label": [1, 0, 1]}
    code, text = _invoke("validate", _text_files(tmp_path, TRAIN_ROWS, test))
    assert code == 0, text
    assert "warning: leakage: 1 of 3 test examples also in train, dropped" in text
    assert "test 2" in text


def test_a_test_file_copied_from_train_is_an_error(tmp_path):
    code, text = _invoke("validate", _text_files(tmp_path, TRAIN_ROWS, TRAIN_ROWS))
    assert code == 2 and "is it a copy?" in text


def test_changed_backbone_weights_change_every_run_key(image_task):
    import torch

    from safeadapt.backbones import load_backbone
    from safeadapt.study import StudyConfig
    from safeadapt.study.freshness import content_fingerprints
    from safeadapt.study.plan import expand_runs

    def factory():
        return load_backbone("efficientnet-lite0", image_size=32)

    def moved():
        bb = factory()
        with torch.no_grad():
            next(bb.parameters()).add_(1e-3)
        return bb

    config = StudyConfig.from_dict(BASE)
    a = expand_runs(config, "image", content_fingerprints(image_task, factory))
    b = expand_runs(config, "image", content_fingerprints(image_task, moved))
    assert a[0].key != b[0].key and a[0].run_id != b[0].run_id


def test_the_ray_executor_without_ray_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, text = _invoke("run", _study(tmp_path), "--executor", "ray", "--no-progress")
    assert code == 2 and "pip install safeadapt[ray]" in text


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9"])
def test_an_unreachable_ray_address_is_a_clear_error(tmp_path, address):
    pytest.importorskip("ray")
    code, text = _invoke("run", _study(tmp_path), "--address", address, "--no-progress")
    assert code == 2 and "nothing answers at 127.0.0.1:9" in text


def test_executor_settings_are_checked(tmp_path):
    code, text = _invoke("validate", _study(tmp_path, executor={"name": "dask"}))
    assert code == 2 and "'executor.name' must be one of sequential, ray" in text
    code, text = _invoke(
        "validate", _study(tmp_path, executor={"name": "ray", "resources": {"ft": {"num_gpus": 1}}})
    )
    assert code == 2 and "no protocol entry 'ft'; the entries are lp" in text
    code, text = _invoke("validate", _study(tmp_path, executor={"resources": {"lp": {"gpus": 1}}}))
    assert code == 2 and "takes num_cpus and num_gpus" in text

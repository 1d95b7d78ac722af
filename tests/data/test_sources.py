import numpy as np
import pandas as pd
import pytest

from safeadapt.data import load_task
from safeadapt.errors import DataError, InvalidConfig


def _csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


TRAIN = {
    "review": ["great", "bad", "lovely", "awful", "superb", "poor"] * 5,
    "stars": ["pos", "neg"] * 15,
}


def test_csv_task_with_string_labels(tmp_path):
    train = _csv(tmp_path / "train.csv", TRAIN)
    test = _csv(tmp_path / "test.csv", {"review": ["nice", "meh"], "stars": ["pos", "neg"]})
    ood = _csv(tmp_path / "ood.csv", {"review": ["ok"], "stars": ["neg"]})
    task = load_task(train, test, ood={"shop": ood}, text_column="review", label_column="stars")
    assert task.label_names == ("neg", "pos")
    assert task.modality == "text"
    assert len(task.train) + len(task.val) == 30 and len(task.val) == 3
    assert task.test.labels.tolist() == [1, 0]
    assert list(task.ood) == ["shop"]


def test_missing_column_lists_the_columns(tmp_path):
    train = _csv(tmp_path / "train.csv", TRAIN)
    with pytest.raises(
        DataError, match=r"no text column 'text'; its columns are \['review', 'stars'\]"
    ):
        load_task(train, train, label_column="stars")


def test_test_label_not_in_train(tmp_path):
    train = _csv(tmp_path / "train.csv", TRAIN)
    test = _csv(tmp_path / "test.csv", {"review": ["x"], "stars": ["neutral"]})
    with pytest.raises(DataError, match=r"label 'neutral' is not in the train label set"):
        load_task(train, test, text_column="review", label_column="stars")


def test_nan_label(tmp_path):
    rows = {"text": ["a", "b", "c"], "label": [1.0, np.nan, 0.0]}
    path = _csv(tmp_path / "train.csv", rows)
    with pytest.raises(DataError, match=r"row 1: label is missing"):
        load_task(path, path)


def test_nan_text(tmp_path):
    path = _csv(tmp_path / "train.csv", {"text": ["a", None, "c", "d"], "label": [1, 0, 1, 0]})
    with pytest.raises(DataError, match="text is missing"):
        load_task(path, path)


def test_empty_file(tmp_path):
    good = _csv(tmp_path / "train.csv", TRAIN)
    (tmp_path / "empty.csv").write_text("review,stars\n")
    with pytest.raises(DataError, match="is empty"):
        load_task(good, str(tmp_path / "empty.csv"), text_column="review", label_column="stars")


def test_missing_file_and_bad_extension(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_task(str(tmp_path / "nope.csv"), str(tmp_path / "nope.csv"))
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported extension '.xlsx'"):
        load_task(str(tmp_path / "data.xlsx"), str(tmp_path / "data.xlsx"))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(6):
                img = rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)  # sizes differ
                Image.fromarray(img).save(folder / f"{i}.png")
    task = load_task(
        str(tmp_path / "train"), str(tmp_path / "test"), image_column="image", image_size=32
    )
    assert task.modality == "image"
    assert task.train.inputs.shape[1:] == (32, 32, 3)
    assert len(task.label_names) == 2


def test_edited_csv_is_read_again_even_with_the_old_mtime(tmp_path):
    import os

    path = tmp_path / "train.csv"
    _csv(path, TRAIN)
    first = load_task(str(path), str(path), text_column="review", label_column="stars")
    stat = os.stat(path)
    flipped = {**TRAIN, "stars": ["neg", "pos"] * 15}  # same size, same mtime below
    _csv(path, flipped)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_task(str(path), str(path), text_column="review", label_column="stars")
    assert (second.test.labels == 1 - first.test.labels).all()
    assert second.fingerprint() != first.fingerprint()


def test_image_folders_map_labels_by_class_name(tmp_path):
    from PIL import Image

    def folder(root, classes):
        for c in classes:
            (root / c).mkdir(parents=True)
            for i in range(4):
                shade = {"apple": 30, "banana": 120, "cherry": 220}[c] + i
                Image.new("RGB", (16, 16), (shade, shade, shade)).save(root / c / f"{i}.png")
        return str(root)

    train = folder(tmp_path / "train", ["apple", "banana", "cherry"])
    ood = folder(tmp_path / "ood", ["banana", "cherry"])  # its own indices would be 0, 1
    task = load_task(train, train, ood={"shop": ood}, image_column="image")
    assert task.label_names == ("apple", "banana", "cherry")
    names = {task.label_names[i] for i in task.ood["shop"].labels}
    assert names == {"banana", "cherry"}
    one = folder(tmp_path / "one", ["apple"])  # a single class keeps its name too
    assert load_task(train, one, image_column="image").test.labels.tolist() == [0] * 4
    (tmp_path / "odd" / "durian").mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(tmp_path / "odd" / "durian" / "0.png")
    with pytest.raises(DataError, match=r"label 'durian' is not in the train label set"):
        load_task(train, str(tmp_path / "odd"), image_column="image")


def test_stratified_validation_holdout_from_a_file(tmp_path):
    rows = {"text": [f"t{i}" for i in range(102)], "label": [0] * 90 + [1] * 9 + [2] * 3}
    path = _csv(tmp_path / "train.csv", rows)
    for seed in range(5):
        task = load_task(path, path, seed=seed)
        assert set(task.val.labels.tolist()) == {0, 1, 2}


def test_hub_sources_pass_config_split_and_revision_and_keep_class_names(monkeypatch):
    """No network here: ``datasets.load_dataset`` is replaced by a recorder that returns a small
    dataset with a ClassLabel column, as the hub's GLUE / SST-2 has."""
    import datasets

    from safeadapt.data.sources import hub_source

    calls = []

    def fake(ident, **kwargs):
        calls.append((ident, kwargs))
        labels = datasets.ClassLabel(names=["negative", "positive"])
        return datasets.Dataset.from_dict(
            {
                "sentence": ["bad film", "great film", "dull", "lovely"] * 5,
                "label": [0, 1, 0, 1] * 5,
            },
            features=datasets.Features({"sentence": datasets.Value("string"), "label": labels}),
        )

    monkeypatch.setattr(datasets, "load_dataset", fake)
    task = load_task(
        train="hub:nyu-mll/glue:train?config=sst2&revision=bcdcba7",
        test="hub:nyu-mll/glue:validation?config=sst2",
        text_column="sentence",
    )
    assert calls[0] == ("nyu-mll/glue", {"split": "train", "name": "sst2", "revision": "bcdcba7"})
    assert calls[1] == ("nyu-mll/glue", {"split": "validation", "name": "sst2"})
    assert task.label_names == ("negative", "positive")  # names, not "0" / "1"
    assert hub_source("hub:imdb") == ("imdb", {"split": "train"})
    with pytest.raises(InvalidConfig, match="unknown option 'conf'"):
        hub_source("hub:imdb?conf=plain")
    with pytest.raises(InvalidConfig, match="names no dataset"):
        hub_source("hub::train")


def _saved(tmp_path):
    """A `datasets` save_to_disk folder: a DatasetDict with train, test and an OOD 'shop' split,
    and a single-Dataset folder."""
    import datasets

    frame = pd.DataFrame(TRAIN)
    shop = pd.DataFrame({"review": ["fine", "broken"] * 10, "stars": ["pos", "neg"] * 10})
    whole = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_pandas(frame),
            "test": datasets.Dataset.from_pandas(frame.iloc[:20]),
            "shop": datasets.Dataset.from_pandas(shop),
        }
    )
    whole.save_to_disk(str(tmp_path / "reviews"))
    datasets.Dataset.from_pandas(shop).save_to_disk(str(tmp_path / "shop-only"))
    return tmp_path / "reviews", tmp_path / "shop-only"


def test_save_to_disk_folders_load_by_path_and_name_their_splits(tmp_path):
    folder, single = _saved(tmp_path)
    columns = {"text_column": "review", "label_column": "stars"}
    task = load_task(str(folder), str(folder), ood={"shop": f"{folder}:shop"}, **columns)
    assert len(task.test) == 20 and len(task.ood["shop"]) == 20
    via_hub = load_task(f"hub:{folder}", f"hub:{folder}:test", ood={"shop": str(single)}, **columns)
    assert len(via_hub.test) == 20 and task.label_names == via_hub.label_names
    with pytest.raises(DataError, match="no split 'shops'; its splits are train, test, shop"):
        load_task(str(folder), str(folder), ood={"shop": f"hub:{folder}:shops"}, **columns)
    with pytest.raises(DataError, match="no split named for 'ood:shop'.*Name one as"):
        load_task(str(folder), str(folder), ood={"shop": str(folder)}, **columns)
    with pytest.raises(DataError, match="holds one dataset without splits"):
        load_task(str(folder), f"{single}:test", **columns)


def test_image_folders_cache_under_safeadapt_home(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("SAFEADAPT_HOME", str(tmp_path / "home"))
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / split / cls / f"{i}.png")
    load_task(str(tmp_path / "train"), str(tmp_path / "test"), image_column="image", image_size=32)
    assert any((tmp_path / "home" / "datasets").rglob("*.arrow"))  # not ~/.cache/huggingface


def test_every_example_keeps_the_row_it_came_from(tmp_path):
    """A held-out validation row and a sampled row still name their file and 0-based row, so
    per-example outputs join back to the user's data."""
    rows = {"text": [f"t{i}" for i in range(40)], "label": ["a", "b"] * 20}
    train = _csv(tmp_path / "train.csv", rows)
    test = _csv(tmp_path / "test.csv", {"text": ["x0", "x1", "x2"], "label": ["a", "b", "a"]})
    task = load_task(train, test, seed=3)
    for split in (task.train, task.val, task.train.sample(10, seed=1)):
        for text, source in zip(split.inputs, split.sources, strict=True):
            file, row = source.rsplit(":", 1)
            assert file == train and rows["text"][int(row)] == text
    assert list(task.test.sources) == [f"{test}:{i}" for i in range(3)]


def test_image_rows_carry_their_file_path(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(
                tmp_path / "train" / cls / f"{i}.png"
            )
    folder = str(tmp_path / "train")
    task = load_task(folder, folder, image_column="image", image_size=8)
    for split in (task.train, task.val, task.test):
        for label, source in zip(split.labels, split.sources, strict=True):
            path = tmp_path / "train" / task.label_names[label]
            assert source.startswith(str(path)) and source.endswith(".png")


def test_a_huge_text_is_refused_with_its_row(tmp_path):
    rows = {"text": ["ok"] * 10 + ["x" * 1_000_001], "label": ["a", "b"] * 5 + ["a"]}
    path = _csv(tmp_path / "train.csv", rows)
    with pytest.raises(DataError, match=r"data row 11: text has 1,000,001 characters"):
        load_task(path, path)

import numpy as np
import pandas as pd
import pytest

from safeadapt.data import load_task
from safeadapt.errors import DataError


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

import numpy as np
import pytest

from safeadapt.data.task import Split, Task, stratified_indices
from safeadapt.errors import DataError, InvalidConfig


def _text(name, texts, labels):
    return Split(name, texts, np.asarray(labels, dtype=np.int64))


def _task(train, val=None, test=None, ood=None, modality="text", names=("neg", "pos")):
    val = train if val is None else val
    test = train if test is None else test
    return Task("t", modality, names, train, val, test, ood or {})


GOOD = _text("train", ["good film", "bad film", "fine", "awful"], [1, 0, 1, 0])


def test_a_valid_task_lists_its_splits():
    task = _task(GOOD, ood={"other": _text("other", ["meh"], [0])})
    assert list(task.splits()) == ["train", "val", "test", "ood:other"]
    assert list(task.eval_splits()) == ["test", "ood:other"]


def test_empty_split():
    with pytest.raises(DataError, match="Split 'test' is empty"):
        _task(GOOD, test=_text("test", [], []))


def test_nan_text_names_the_row():
    with pytest.raises(DataError, match=r"Split 'train', row 1: text is missing"):
        _task(_text("train", ["ok", float("nan"), "x", "y"], [1, 0, 1, 0]))


def test_empty_text():
    with pytest.raises(DataError, match=r"row 2: text is empty"):
        _task(_text("train", ["ok", "no", "  ", "y"], [1, 0, 1, 0]))


def test_label_outside_the_label_set():
    with pytest.raises(DataError, match=r"label index 2 is outside the task's 2 classes"):
        _task(_text("train", ["a", "b", "c"], [0, 1, 2]))


def test_ood_label_never_seen_in_train():
    train = _text("train", ["a", "b", "c"], [0, 1, 0])
    ood = _text("ood", ["z"], [2])
    with pytest.raises(
        DataError, match=r"split 'ood:x' has labels \['c'\] that never appear in train"
    ):
        _task(train, ood={"x": ood}, names=("a", "b", "c"))


def test_single_class_train():
    with pytest.raises(DataError, match="train has only 1 class"):
        _task(_text("train", ["a", "b"], [1, 1]))


def test_length_mismatch():
    with pytest.raises(DataError, match="3 inputs but 2 labels"):
        _task(_text("train", ["a", "b", "c"], [1, 0]))


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((4, 28, 28, 2), np.uint8), r"C in \{1, 3\}"),
        (np.zeros((4, 784), np.uint8), r"shape \(N, H, W\)"),
        (np.zeros((4, 28, 28), np.float32), "must be uint8"),
        (np.zeros((4, 4, 4), np.uint8), "too small"),
    ],
)
def test_images_of_wrong_shape_or_type(images, match):
    split = Split("train", images, np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=match):
        _task(split, modality="image")


def test_unknown_modality():
    with pytest.raises(InvalidConfig, match="'modality' must be one of"):
        _task(GOOD, modality="audio")


def test_stratified_sample_keeps_class_shares_and_is_seeded():
    labels = np.array([0] * 80 + [1] * 20)
    idx = stratified_indices(labels, 10, seed=3)
    assert len(set(idx.tolist())) == 10
    assert (labels[idx] == 1).sum() == 2
    assert np.array_equal(idx, stratified_indices(labels, 10, seed=3))
    assert not np.array_equal(idx, stratified_indices(labels, 10, seed=4))


def test_subsample_records_what_was_cut():
    texts = [f"text {i}" for i in range(50)]
    big = _text("train", texts, [i % 2 for i in range(50)])
    small = _task(big).subsample(max_train=10, max_eval=6)
    assert len(small.train) == 10 and len(small.test) == 6
    assert "train: sampled 10 of 50" in small.notes


def test_fingerprint_depends_on_content_only():
    a = _text("a", ["x", "y"], [0, 1])
    assert a.fingerprint() == _text("b", ["x", "y"], [0, 1]).fingerprint()
    assert a.fingerprint() != _text("a", ["x", "z"], [0, 1]).fingerprint()
    assert a.fingerprint() != _text("a", ["x", "y"], [1, 1]).fingerprint()


def _ood_task(n_ood=60, seed_labels=0):
    rng = np.random.default_rng(seed_labels)
    labels = rng.integers(0, 2, n_ood)
    ood = _text("shop", [f"review {i}" for i in range(n_ood)], labels)
    return _task(GOOD, ood={"shop": ood})


def test_ood_val_carving_is_disjoint_stratified_and_seeded():
    task = _ood_task(60).with_ood_val(0.5, seed=3)
    val, test = task.ood_val["shop"], task.ood["shop"]
    assert set(val.inputs).isdisjoint(test.inputs)
    assert len(val) + len(test) == 60
    whole = _ood_task(60).ood["shop"]
    for c in (0, 1):  # each class divided in half (rounded), on both sides
        n = int((whole.labels == c).sum())
        assert int((val.labels == c).sum()) == round(n / 2)
        assert int((test.labels == c).sum()) == n - round(n / 2)
    again = _ood_task(60).with_ood_val(0.5, seed=3)
    assert again.ood_val["shop"].inputs == val.inputs
    other = _ood_task(60).with_ood_val(0.5, seed=4)
    assert other.ood_val["shop"].inputs != val.inputs
    assert list(task.selection_splits()) == ["val", "ood-val:shop"]
    assert "ood-val:shop" not in task.eval_splits()


def test_an_ood_source_too_small_to_divide_names_the_fix():
    with pytest.raises(DataError, match=r"OOD source 'shop' has 12 examples.*ood_val: \{shop"):
        _ood_task(12).with_ood_val(0.5)


def test_validation_holdout_keeps_every_class():
    from safeadapt.data.task import stratified_holdout

    labels = np.array([0] * 90 + [1] * 9 + [2] * 3)
    for seed in range(5):
        held, kept = stratified_holdout(labels, 0.1, seed)
        assert set(labels[held]) == {0, 1, 2} and set(labels[kept]) == {0, 1, 2}
        assert len(np.intersect1d(held, kept)) == 0 and len(held) + len(kept) == 102
    with pytest.raises(DataError, match=r"class 'rare' has 1 example"):
        stratified_holdout(np.array([0, 0, 0, 1]), 0.1, 0, ("common", "rare"))


def test_task_fingerprint_sees_content_not_names():
    a = _ood_task(30)
    assert a.fingerprint() == _ood_task(30).fingerprint()
    assert a.fingerprint() != _ood_task(30, seed_labels=1).fingerprint()


def test_cross_split_duplicates_are_dropped_from_evaluation_splits():
    train = _text("train", ["good film", "bad film", "fine", "awful"], [1, 0, 1, 0])
    test = _text("test", ["good   film", "new one", "awful", "other"], [1, 0, 0, 1])
    task = _task(train, val=_text("val", ["x", "y"], [0, 1]), test=test)
    clean = task.without_leaks("drop")
    assert clean.test.inputs == ["new one", "other"]
    (note,) = [n for n in clean.notes if n.startswith("leakage:")]
    assert "2 of 4 test examples also in train, dropped" in note
    warned = task.without_leaks("warn")
    assert len(warned.test) == 4 and any("kept" in n for n in warned.notes)
    assert task.without_leaks("keep") is task


def test_a_test_set_copied_from_train_is_an_error():
    with pytest.raises(DataError, match=r"all 4 examples also appear in train -- is it a copy"):
        _task(GOOD, val=_text("val", ["x", "y"], [0, 1]), test=GOOD).without_leaks()


def test_extra_training_rows_are_always_used_and_never_evaluated_on(tmp_path):
    """``task.extra_train`` (the labelled windows a monitor saw drift in): appended after the
    training sample, read by the task's class names; an evaluation row that repeats one of them
    is dropped; a class the task lacks is an error; where the task has groups, theirs is unknown."""
    import pandas as pd

    from safeadapt.study.specs import TaskSpec

    rows = [("good film", "pos"), ("bad film", "neg"), ("great", "pos"), ("awful", "neg")] * 10
    texts = [f"{t} {i}" for i, (t, _) in enumerate(rows)]
    frame = pd.DataFrame({"text": texts, "label": [lab for _, lab in rows]})
    frame.iloc[:24].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[24:].to_csv(tmp_path / "test.csv", index=False)
    extra = pd.DataFrame({"text": ["new slang", "meh", texts[30]], "label": ["pos", "neg", "neg"]})
    extra.to_csv(tmp_path / "extra.csv", index=False)
    spec = {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"),
            "max_train": 10}  # fmt: skip
    plain = TaskSpec(**spec).load()
    task = TaskSpec(**spec, extra_train={"monitored": str(tmp_path / "extra.csv")}).load()
    assert len(task.train) == len(plain.train) + 3 and task.train.inputs[-3:] == extra.text.tolist()
    assert task.label_names[task.train.labels[-3]] == "pos"
    assert texts[30] in plain.test.inputs and texts[30] not in task.test.inputs  # now trained on
    assert task.fingerprint() != plain.fingerprint()  # runs are keyed on it: redone, not reused
    pd.DataFrame({"text": ["x"], "label": ["maybe"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="label 'maybe' is not one of the task's classes"):
        TaskSpec(**spec, extra_train={"bad": str(tmp_path / "bad.csv")}).load()
    frame.assign(group="a").iloc[:24].to_csv(tmp_path / "grouped.csv", index=False)
    frame.assign(group="a").iloc[24:].to_csv(tmp_path / "grouped-test.csv", index=False)
    grouped = {**spec, "train": str(tmp_path / "grouped.csv"), "group_column": "group",
               "test": str(tmp_path / "grouped-test.csv")}  # fmt: skip
    with_groups = TaskSpec(**grouped, extra_train={"m": str(tmp_path / "extra.csv")}).load()
    assert list(with_groups.train.groups[-4:]) == ["a", "unknown", "unknown", "unknown"]
    with pytest.raises(InvalidConfig, match="'extra_train' entry 'm' must be a source"):
        TaskSpec(**spec, extra_train={"m": 3})

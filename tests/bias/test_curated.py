"""curate's files: group shares as spelled on the command line, an output that never replaces
an input, and the curated split written in the task's own form."""

import numpy as np
import pandas as pd
import pytest

from safeadapt.bias.curated import check_curate_out, parse_group_shares, write_curated
from safeadapt.data.task import Split
from safeadapt.errors import InvalidConfig


def test_group_shares_are_parsed_or_named():
    assert parse_group_shares(None) is None
    assert parse_group_shares(["red=0.7", "green=0.3"]) == {"red": 0.7, "green": 0.3}
    with pytest.raises(InvalidConfig, match="takes group=share; got 'red'"):
        parse_group_shares(["red"])
    with pytest.raises(InvalidConfig, match="must be a number, e.g. red=0.5"):
        parse_group_shares(["red=lots"])


def test_the_output_is_never_an_input_a_folder_or_an_existing_file(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n")
    with pytest.raises(InvalidConfig, match="is the study's data"):
        check_curate_out(data, [str(data)], force=True)
    with pytest.raises(InvalidConfig, match="is a folder"):
        check_curate_out(tmp_path, [], force=True)
    other = tmp_path / "old.csv"
    other.write_text("x\n")
    with pytest.raises(InvalidConfig, match="exists; give a new file name or pass --force"):
        check_curate_out(other, [str(data)], force=False)
    check_curate_out(other, [str(data)], force=True)
    check_curate_out(tmp_path / "new.csv", [str(data), None], force=False)


def test_a_curated_split_is_written_in_its_tasks_form(tmp_path):
    texts = Split("train", ["a b", "c d", "e f"], np.array([0, 1, 1]), np.array(["x", "y", "x"]))
    path = write_curated(texts, ("neg", "pos"), "text", tmp_path / "sub" / "out.csv")
    frame = pd.read_csv(path)
    assert path == tmp_path / "sub" / "out.csv"
    assert frame.to_dict("list") == {
        "text": ["a b", "c d", "e f"],
        "label": ["neg", "pos", "pos"],
        "group": ["x", "y", "x"],
    }
    images = Split("train", np.zeros((2, 4, 4), np.uint8), np.array([1, 0]), np.array(["g", "r"]))
    path = write_curated(images, ("a", "b"), "image", tmp_path / "out.csv")
    assert path.suffix == ".npz"
    with np.load(path) as saved:
        assert saved["images"].shape == (2, 4, 4) and saved["labels"].tolist() == [1, 0]
        assert saved["groups"].tolist() == ["g", "r"]

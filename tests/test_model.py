import pytest
import torch

from safeadapt.errors import CheckpointError
from safeadapt.model import Classifier


def test_safetensors_roundtrip(tmp_path, minilm_factory):
    torch.manual_seed(0)
    model = Classifier(minilm_factory(), 2)
    with torch.no_grad():
        model.backbone.model.encoder.layer[0].output.dense.weight.add_(0.01)
    path = model.save(tmp_path / "m.safetensors", {"protocol": "ft"})
    other = Classifier(minilm_factory(), 2).load(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, minilm):
    path = tmp_path / "m.safetensors"
    Classifier(minilm, 2).save(path)
    path.write_bytes(path.read_bytes()[:1000])  # a killed write / truncated copy
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors file"):
        Classifier(minilm, 2).load(path)


def test_checkpoint_of_another_shape(tmp_path, minilm):
    path = Classifier(minilm, 3).save(tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError):
        Classifier(minilm, 2).load(path)


def test_missing_checkpoint(tmp_path, minilm):
    with pytest.raises(CheckpointError, match="does not exist"):
        Classifier(minilm, 2).load(tmp_path / "none.safetensors")


def test_pickles_are_not_accepted(tmp_path, minilm):
    path = tmp_path / "m.safetensors"
    torch.save(Classifier(minilm, 2).state_dict(), path)
    with pytest.raises(CheckpointError):
        Classifier(minilm, 2).load(path)

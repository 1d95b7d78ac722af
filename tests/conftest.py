"""Shared fixtures: the real packaged backbones and small samples of the real built-in data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores (``make test`` runs one per core): one math thread
    # each, in these processes and the ones they start, or their thread pools contend and every
    # test slows down. Set before torch is imported.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    from safeadapt.data.features import FeatureCache

    return FeatureCache(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="session")
def text_task():
    from safeadapt.data import load_builtin_task

    return load_builtin_task("vader-sentiment").subsample(max_train=240, max_eval=120, seed=0)


@pytest.fixture(scope="session")
def image_task():
    from safeadapt.data import load_builtin_task

    return load_builtin_task("mnist").subsample(max_train=300, max_eval=150, seed=0)


@pytest.fixture(scope="session")
def minilm_factory():
    from safeadapt.backbones import load_backbone

    return lambda: load_backbone("minilm", max_length=32)


@pytest.fixture(scope="session")
def effnet_factory():
    from safeadapt.backbones import load_backbone

    return lambda: load_backbone("efficientnet-lite0", image_size=32)


@pytest.fixture(scope="session")
def minilm(minilm_factory):
    return minilm_factory()


@pytest.fixture(scope="session")
def effnet(effnet_factory):
    return effnet_factory()


# a tiny CLIP pair built here (random weights, a word-level tokenizer; no download): zero-shot
# protocol, the protocol battery and the Hugging Face vision backbones
WORDS = ["a", "photo", "of", "digit", ".", *[str(i) for i in range(10)]]


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("clip-pair")
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                            eos_token="[EOS]").save_pretrained(folder)  # fmt: skip
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 32, "vocab_size": len(vocab), "eos_token_id": 2,
                     "bos_token_id": 1, "pad_token_id": 0},
        vision_config={"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "intermediate_size": 32, "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )  # fmt: skip
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                       image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(folder)  # fmt: skip
    return str(folder)


# a tiny ViT saved as a hub-style folder with its processor (random weights; no download)
MEAN, STD = [0.4, 0.45, 0.5], [0.2, 0.25, 0.3]


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=48, image_size=32, patch_size=8)  # fmt: skip
    ViTModel(config).save_pretrained(folder)
    size = {"height": 32, "width": 32}
    ViTImageProcessor(size=size, image_mean=MEAN, image_std=STD).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with the packaged MiniLM's tokenizer (random weights)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from safeadapt.backbones.huggingface import minilm_path

    folder = tmp_path_factory.mktemp("bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=48, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return str(folder)

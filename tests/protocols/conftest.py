"""A tiny CLIP pair built here (random weights, a word-level tokenizer; no download) for the
zero-shot protocol and the protocol battery."""

import pytest
import torch

WORDS = ["a", "photo", "of", "digit", ".", *[str(i) for i in range(10)]]


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
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

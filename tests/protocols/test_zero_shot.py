"""Zero-shot heads from a CLIP pair's text tower (a tiny random CLIP and a word-level tokenizer
built here, no download): the head reproduces the pair's own logits, and it starts LP-FT and
WiSE-FT (theta_0 = the zero-shot model, as in the WiSE-FT paper)."""

import pytest
import torch

from safeadapt.backbones import load_backbone
from safeadapt.errors import InvalidConfig
from safeadapt.protocols import FitContext, make_protocol


@pytest.fixture(scope="module")
def digits(image_task):
    return image_task.subsample(max_train=64, max_eval=32)


def test_zero_shot_logits_equal_the_pairs_own(tiny_clip, digits, feature_cache):
    from transformers import AutoTokenizer, CLIPModel

    factory = lambda: load_backbone(f"hf:{tiny_clip}")  # noqa: E731
    fitted = make_protocol("zero-shot", {"prompts": ["a photo of digit {} ."]}).fit(
        FitContext(digits, factory, 0, feature_cache, show_progress=False)
    )
    model = fitted.model
    assert fitted.frozen_backbone and model.backbone.pooling == "embeds"
    images = digits.test.inputs[:6]
    batch = model.backbone.preprocess(images)
    pair = CLIPModel.from_pretrained(tiny_clip).eval()
    tok = AutoTokenizer.from_pretrained(tiny_clip)
    enc = tok([f"a photo of digit {n} ." for n in digits.label_names], padding=True,
              return_tensors="pt")  # fmt: skip
    pixels = (batch["pixels"] - 0.5) / 0.25
    with torch.no_grad():
        ours = model(batch)
        theirs = pair(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                      pixel_values=pixels).logits_per_image  # fmt: skip
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_zero_shot_starts_lp_ft_and_wise_ft(tiny_clip, digits, feature_cache):
    factory = lambda: load_backbone(f"hf:{tiny_clip}")  # noqa: E731
    ctx = FitContext(digits, factory, 0, feature_cache, show_progress=False)
    zs = make_protocol("zero-shot").fit(ctx)
    train = {"epochs": 1, "max_steps": 2, "batch_size": 16, "head_init": "zero-shot"}
    lpft = make_protocol("lp-ft", train).fit(ctx)
    assert lpft.info["head_init"] == "zero-shot"
    assert lpft.info["start_val_accuracy"] == pytest.approx(zs.info["val_accuracy"])
    wise = make_protocol("wise-ft", {**train, "alphas": [0.0, 1.0]}).fit(ctx)
    curve = {p["alpha"]: p["val_accuracy"] for p in wise.info["alpha_curve"]}
    assert curve[0.0] == pytest.approx(zs.info["val_accuracy"], abs=1e-6)  # theta_0 = zero-shot


def test_zero_shot_needs_a_pair(digits, effnet_factory, feature_cache, tmp_path):
    ctx = FitContext(digits, effnet_factory, 0, feature_cache, show_progress=False)
    with pytest.raises(InvalidConfig, match="CLIP / SigLIP"):
        make_protocol("zero-shot").fit(ctx)
    with pytest.raises(InvalidConfig, match="'prompts' must each contain"):
        make_protocol("zero-shot", {"prompts": ["no slot"]})
    with pytest.raises(InvalidConfig, match="'head_init' must stay 'lp'"):
        make_protocol("lp-vat-ft", {"head_init": "zero-shot"})

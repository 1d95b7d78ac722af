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
    # the start is the zero-shot model: the same weights, evaluated in other batches; this random
    # tiny CLIP's logits are nearly tied, so one example may flip with the thread count (not more)
    one = 1 / len(digits.val) + 1e-9
    assert abs(lpft.info["start_val_accuracy"] - zs.info["val_accuracy"]) <= one
    wise = make_protocol("wise-ft", {**train, "alphas": [0.0, 1.0]}).fit(ctx)
    curve = {p["alpha"]: p["val_accuracy"] for p in wise.info["alpha_curve"]}
    assert abs(curve[0.0] - zs.info["val_accuracy"]) <= one  # theta_0 = zero-shot, likewise


def test_zero_shot_needs_a_pair(digits, effnet_factory, feature_cache, tmp_path):
    ctx = FitContext(digits, effnet_factory, 0, feature_cache, show_progress=False)
    with pytest.raises(InvalidConfig, match="CLIP / SigLIP"):
        make_protocol("zero-shot").fit(ctx)
    with pytest.raises(InvalidConfig, match="'prompts' entry 0 must be a text with '{}'"):
        make_protocol("zero-shot", {"prompts": ["no slot"]})
    with pytest.raises(InvalidConfig, match="'head_init' must stay 'lp'"):
        make_protocol("lp-vat-ft", {"head_init": "zero-shot"})


def test_a_yaml_study_on_a_clip_pair_with_zero_shot_init_and_lora(tiny_clip, tmp_path):
    """The acceptance study: YAML, a CLIP folder, zero-shot / LP / LoRA LP-FT from the zero-shot
    head, the safety suite, through the command line."""
    import json

    import yaml
    from typer.testing import CliRunner

    from safeadapt.cli import app

    train = {"epochs": 1, "max_steps": 2, "batch_size": 16, "tune": "lora", "keep_start": False}
    study = {
        "name": "clip",
        "task": {"builtin": "mnist", "max_train": 60, "max_eval": 30},
        "backbone": {"name": f"hf:{tiny_clip}"},
        "protocols": {"zero-shot": {}, "lp": {}, "lp-ft": {**train, "head_init": "zero-shot"}},
        "safety": {
            "families": ["calibration", "adversarial", "distortion", "detection"],
            "adversarial": {"eps": [0.0, 0.03], "steps": 1, "max_examples": 8},
        },  # fmt: skip
        "preflight": {"checks": []},
        "output": str(tmp_path / "out"),
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    out = CliRunner().invoke(app, ["run", str(path), "--no-progress"])
    assert out.exit_code == 0, out.output
    from safeadapt.results import RunRecord

    records = {
        r.variant: r
        for r in (
            RunRecord.from_json(json.loads(p.read_text()))
            for p in (tmp_path / "out" / "runs").glob("*/record.json")
        )
    }
    assert set(records) == {"zero-shot", "lp", "lp-ft"}
    assert records["lp-ft"].info["head_init"] == "zero-shot"
    assert records["lp-ft"].info["tuning"]["lora_targets"] == ["q_proj", "v_proj"]
    for record in records.values():
        assert set(record.safety) >= {"calibration", "adversarial", "distortion", "detection"}
    assert records["zero-shot"].safety["distortion"]["test"]["l2"] == 0.0
    report = (tmp_path / "out" / "report.html").read_text()
    assert "zero-shot head, from 1 prompt(s) per class" in report  # what the start was

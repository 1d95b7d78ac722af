"""Hugging Face vision backbones from tiny, randomly initialised models built here and saved to a
folder (no download): ViT, ConvNeXt and CLIP's vision tower load through ``hf:<folder>``, take the
processor's size and normalisation, and run LP, LoRA LP-FT and the safety suite in a study."""

import pytest
import torch

from safeadapt.backbones import load_backbone
from safeadapt.backbones.hf_vision import HFVisionBackbone
from safeadapt.errors import InvalidConfig
from tests.conftest import MEAN


@pytest.fixture(scope="module")
def tiny_convnext(tmp_path_factory):
    from transformers import ConvNextConfig, ConvNextModel

    folder = tmp_path_factory.mktemp("convnext")
    torch.manual_seed(0)
    config = ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=32)
    ConvNextModel(config).save_pretrained(folder)  # no processor file: config size, 0.5 / 0.5
    return str(folder)


def test_vit_from_a_folder_takes_the_processor_settings(tiny_vit):
    bb = load_backbone(f"hf:{tiny_vit}")
    assert isinstance(bb, HFVisionBackbone) and bb.modality == "image"
    assert bb.image_size == 32 and bb.pooling == "pooler" and bb.feature_dim == 32
    assert torch.allclose(bb.mean.flatten(), torch.tensor(MEAN))
    assert bb.layer_names == ("embeddings", "layer.0", "layer.1")
    images = torch.randint(0, 255, (3, 20, 20, 3), dtype=torch.uint8).numpy()
    with torch.no_grad():
        feats, taps = bb.forward_layers(bb.preprocess(images), ("layer.1",))
    assert feats.shape == (3, 32) and taps["layer.1"].shape == (3, 32)
    cls = load_backbone(f"hf:{tiny_vit}", pooling="cls", image_size=48)
    assert cls.config()["pooling"] == "cls" and cls.image_size == 48
    with pytest.raises(InvalidConfig, match="has no option 'max_length'"):
        load_backbone(f"hf:{tiny_vit}", max_length=5)
    with pytest.raises(InvalidConfig, match="'pooling' must be one of"):
        load_backbone(f"hf:{tiny_vit}", pooling="max")


def test_convnext_without_a_processor_and_the_clip_vision_tower(tiny_convnext, tiny_clip):
    conv = load_backbone(f"hf:{tiny_convnext}")
    assert conv.feature_dim == 16 and "none" in conv.config()["processor"]
    assert conv.layer_names[0] == "embeddings" and len(conv.layer_names) == 3
    clip = load_backbone(f"hf:{tiny_clip}")  # the image embedding (projection 8), unit length
    assert clip.feature_dim == 8 and clip.pooling == "embeds"
    assert not any("text_model" in n for n, _ in clip.named_parameters())  # image side only
    images = torch.randint(0, 255, (2, 32, 32, 3), dtype=torch.uint8).numpy()
    with torch.no_grad():
        emb = clip(clip.preprocess(images))
    assert emb.shape == (2, 8) and torch.allclose(emb.norm(dim=1), torch.ones(2))
    assert load_backbone(f"hf:{tiny_clip}", pooling="pooler").feature_dim == 16
    with pytest.raises(InvalidConfig, match="not a CLIP / SigLIP pair"):
        load_backbone(f"hf:{tiny_convnext}", pooling="embeds")


def test_a_study_on_a_hub_style_vit_with_lora(tiny_vit, tmp_path, feature_cache):
    from safeadapt.study import StudyConfig, run_study

    config = StudyConfig.from_dict(
        {
            "name": "vit",
            "task": {"builtin": "mnist", "max_train": 60, "max_eval": 40},
            "backbone": {"name": f"hf:{tiny_vit}"},
            "protocols": {
                "lp": {},
                "lp-ft": {
                    "epochs": 1,
                    "max_steps": 2,
                    "batch_size": 16,
                    "tune": "lora",
                    "keep_start": False,
                },
            },
            "safety": {
                "adversarial": {"eps": [0.0, 0.03], "steps": 1, "max_examples": 8},
                "corruption": False,
                "forgetting": False,
            },  # fmt: skip
            "preflight": {"checks": []},
            "output": str(tmp_path / "out"),
        }
    )
    result = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    by = {r.variant: r for r in result.runs}
    assert by["lp-ft"].info["tuning"]["lora_targets"] in (
        ["query", "value"],
        ["q_proj", "v_proj"],
    )
    assert by["lp"].safety["distortion"]["test"]["l2"] == 0.0
    assert by["lp-ft"].safety["distortion"]["test"]["l2"] > 0  # LoRA moved the features
    assert result.report_path.is_file()

"""A ``transformers`` folder for an exported model, where the architecture allows it.

A safeadapt classifier is ``head(features(backbone(x)))``. ``transformers`` has the same model
when its ``*For{Sequence,Image}Classification`` class classifies the very features the study
used: BERT-family text models with ``pooling: pooler``; ViT / DeiT with ``pooling: cls``;
ConvNeXt / Swin with ``pooling: pooler`` (their default). Rather than trusting a table, the export
builds the ``transformers`` model, copies the backbone and head in, and compares its logits with
the safeadapt model's on a probe batch; the folder is written only when they agree (otherwise the
reason is returned and the safeadapt folder stays the way to load the model).
"""

from __future__ import annotations

from pathlib import Path

import torch

from safeadapt.results.export import TransformersExport

SUBFOLDER = "transformers"
TOLERANCE = 1e-4  # max |logit difference| on the probe batch (float32)


def write_transformers(model, label_names: list[str], out: Path) -> TransformersExport:
    """Write ``out/transformers`` (``save_pretrained``, safetensors; plus the tokenizer or image
    processor) when the architecture allows; returns what was written, or why nothing was
    (``skipped``)."""
    from safeadapt.backbones.hf_vision import HFVisionBackbone
    from safeadapt.backbones.huggingface import HFTextBackbone

    backbone = model.backbone
    if isinstance(backbone, HFTextBackbone):
        auto, probe = "AutoModelForSequenceClassification", _text_probe(backbone)
    elif isinstance(backbone, HFVisionBackbone):
        auto, probe = "AutoModelForImageClassification", _image_probe(backbone)
    else:
        return TransformersExport(skipped=f"backbone {backbone.name!r} is not a Hugging Face model")
    base = backbone.model
    if not isinstance(base, torch.nn.Module) or not hasattr(base, "config"):
        return TransformersExport(
            skipped=f"{backbone.name!r} is a tower of a pair, not a whole model"
        )
    hf, reason = _build(auto, base, model.head, label_names)
    if hf is None:
        return TransformersExport(skipped=reason)
    batch, hf_inputs = probe
    with torch.no_grad():
        ours = model.eval()(batch)
        try:
            theirs = hf.eval()(**hf_inputs).logits
        except (ValueError, RuntimeError) as err:  # e.g. ViT at another size than its config's
            reason = f"{type(hf).__name__} cannot run the study's inputs ({err})"
            return TransformersExport(skipped=reason[:200])
    diff = float((ours - theirs).abs().max())
    if diff > TOLERANCE:
        return TransformersExport(
            skipped=f"{type(hf).__name__} classifies other features than pooling "
            f"{backbone.pooling!r} (logits differ by {diff:.3g})"
        )
    folder = out / SUBFOLDER
    hf.save_pretrained(folder, safe_serialization=True)
    _save_preprocessing(backbone, folder)
    return TransformersExport(SUBFOLDER, auto, diff, TOLERANCE)


def _build(auto: str, base, head, label_names):
    import transformers

    config = base.config.__class__.from_dict(base.config.to_dict())
    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}
    try:
        hf = getattr(transformers, auto).from_config(config)
    except (ValueError, KeyError) as err:
        return None, f"{auto} has no class for {config.model_type!r} ({str(err)[:80]})"
    inner = hf.base_model
    missing, _ = inner.load_state_dict(base.state_dict(), strict=False)
    classifier = getattr(hf, "classifier", None)
    if missing or not isinstance(classifier, torch.nn.Linear):
        return None, (
            f"{type(hf).__name__} does not take this backbone's weights as they are "
            f"(missing {sorted(missing)[:2]})"
        )
    if classifier.weight.shape != head.weight.shape:
        return None, f"{type(hf).__name__}'s classifier takes other features than the head's"
    with torch.no_grad():
        classifier.weight.copy_(head.weight)
        classifier.bias.copy_(head.bias)
    return hf, ""


def _text_probe(backbone):
    texts = ["a short probe sentence", "another, longer probe sentence for the export check"]
    batch = backbone.preprocess(texts)
    return batch, dict(batch)


def _image_probe(backbone):
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 3, backbone.image_size, backbone.image_size, generator=gen)
    x = (pixels - backbone.mean) / backbone.std
    return {"pixels": pixels}, {"pixel_values": x}


def _save_preprocessing(backbone, folder: Path) -> None:
    """The tokenizer, or an image processor with the study's size and normalisation."""
    from safeadapt.backbones.huggingface import HFTextBackbone

    if isinstance(backbone, HFTextBackbone):
        backbone.tokenizer.model_max_length = backbone.max_length
        backbone.tokenizer.save_pretrained(folder)
        return
    from transformers import ViTImageProcessor  # a plain resize + rescale + normalise

    size = backbone.image_size
    ViTImageProcessor(
        size={"height": size, "width": size},
        image_mean=backbone.mean.flatten().tolist(),
        image_std=backbone.std.flatten().tolist(),
    ).save_pretrained(folder)

"""Export: the recommended (or a named) variant's model, a manifest that rebuilds it, and a model
card with the Hub's model-index; reloading gives the same logits."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from safeadapt.cli import app
from safeadapt.errors import CheckpointError, InvalidConfig
from safeadapt.study import StudyConfig, run_study
from safeadapt.study.export import export_model, load_exported


@pytest.fixture(scope="module")
def saved_study(tmp_path_factory, feature_cache):
    from tests.study.conftest import TINY_STUDY

    raw = {
        **TINY_STUDY,
        "protocols": {"lp": {}, "ft": TINY_STUDY["protocols"]["ft"]},
        "seeds": [0],
        "safety": {"adversarial": False, "corruption": False, "forgetting": False},
        "preflight": {"checks": []},
        "save_models": True,
        "output": str(tmp_path_factory.mktemp("export") / "out"),
    }
    config = StudyConfig.from_dict(raw)
    done = run_study(
        config, cache=feature_cache, show_progress=False, log=lambda m: None, report=False
    )
    return config, done


def test_export_reloads_to_the_same_logits_with_a_model_card(saved_study, tmp_path):
    from safeadapt.study.store import MODEL

    config, result = saved_study
    folder = export_model(config, tmp_path / "export", variant="ft")
    manifest = json.loads((folder / "safeadapt.json").read_text())
    assert manifest["variant"] == "ft" and manifest["label_names"] == list(
        result.summary.label_names
    )
    model = load_exported(folder)
    run_id = next(r.run_id for r in result.runs if r.variant == "ft")
    task = config.task.load()
    batch = model.backbone.preprocess(task.test.inputs[:8])
    with torch.no_grad():
        again = load_exported(folder)(batch)
        original = _stored(config, run_id, len(manifest["label_names"]))(batch)
    torch.testing.assert_close(again, original)
    assert not torch.equal(original, _fresh(config, len(manifest["label_names"]))(batch))
    card = (folder / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert metrics[0]["name"] == "ID test accuracy" and 0 <= metrics[0]["value"] <= 1
    assert "| ID acc |" in card and "[" in card  # the table carries intervals
    assert (folder / MODEL).stat().st_size > 1_000_000
    assert "not a Hugging Face model" in manifest["transformers"]["skipped"]
    assert "No `transformers` folder" in card


def _stored(config, run_id, k):
    from safeadapt.model import Classifier

    model = Classifier(config.backbone.factory("image")(), k)
    return model.load(config.output_dir / "runs" / run_id / "model.safetensors").eval()


def _fresh(config, k):
    from safeadapt.model import Classifier

    torch.manual_seed(0)
    return Classifier(config.backbone.factory("image")(), k).eval()


def test_export_errors_name_the_fix(saved_study, tmp_path, feature_cache):
    config, _ = saved_study
    with pytest.raises(InvalidConfig, match="no variant 'lpft'"):
        export_model(config, tmp_path / "a", variant="lpft")
    with pytest.raises(InvalidConfig, match="ran seeds \\[0\\]"):
        export_model(config, tmp_path / "b", variant="lp", seed=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(InvalidConfig, match="not empty"):
        export_model(config, tmp_path / "full")
    with pytest.raises(CheckpointError, match="not a safeadapt export"):
        load_exported(tmp_path / "full")
    out = CliRunner().invoke(app, ["export", "nope.yaml", "--out", str(tmp_path / "c")])
    assert out.exit_code == 2


# slow: a second study; reuse by content is tested in tests/study/test_runner.py
@pytest.mark.slow
def test_a_run_stored_without_its_model_is_redone_when_models_are_asked_for(
    saved_study, feature_cache
):
    import dataclasses

    config, result = saved_study
    model = next((config.output_dir / "runs").glob("lp-*/model.safetensors"))
    model.unlink()
    with pytest.raises(CheckpointError, match="save_models: true"):
        export_model(config, config.output_dir.parent / "x", variant="lp")
    again = run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None)
    assert again.ran == 1 and model.is_file()
    plain = dataclasses.replace(config, save_models=False)
    assert run_study(plain, cache=feature_cache, show_progress=False, log=lambda m: None).ran == 0


def test_a_vit_study_exports_a_transformers_folder_with_the_same_logits(
    tiny_vit, tmp_path, feature_cache
):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    config = StudyConfig.from_dict(
        {
            "name": "vit-export",
            "task": {"builtin": "mnist", "max_train": 40, "max_eval": 20},
            "backbone": {"name": f"hf:{tiny_vit}", "options": {"pooling": "cls"}},
            "protocols": {"ft": {"epochs": 1, "max_steps": 2, "batch_size": 16}},
            "seeds": [0],
            "safety": {"families": ["calibration"]},
            "preflight": {"checks": []},
            "save_models": True,
            "output": str(tmp_path / "out"),
        }
    )
    run_study(config, cache=feature_cache, show_progress=False, log=lambda m: None, report=False)
    folder = export_model(config, tmp_path / "export")
    hf = json.loads((folder / "safeadapt.json").read_text())["transformers"]
    assert hf["auto_class"] == "AutoModelForImageClassification", hf
    reloaded = AutoModelForImageClassification.from_pretrained(folder / hf["folder"]).eval()
    ours = load_exported(folder)
    images = config.task.load().test.inputs[:6]
    batch = ours.backbone.preprocess(images)
    with torch.no_grad():
        expected = ours(batch)
        x = (batch["pixels"] - ours.backbone.mean) / ours.backbone.std
        got = reloaded(pixel_values=x).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert reloaded.config.id2label[3] == "3"
    processor = AutoImageProcessor.from_pretrained(folder / hf["folder"])
    assert processor.image_mean == pytest.approx(ours.backbone.mean.flatten().tolist())
    card = (folder / "README.md").read_text()
    assert "AutoModelForImageClassification.from_pretrained" in card
    assert "tolerance 0.0001" in card  # the tolerance actually used, beside the measured difference
    from huggingface_hub import ModelCard

    meta = ModelCard.load(folder / "README.md").data
    assert meta.library_name == "transformers" and meta.base_model is None  # a local folder


def test_a_bert_with_its_pooler_reloads_in_transformers_and_mean_pooling_is_refused(
    tiny_bert, tmp_path
):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from safeadapt.backbones import load_backbone
    from safeadapt.model import Classifier
    from safeadapt.study.hf_export import write_transformers

    torch.manual_seed(1)
    model = Classifier(load_backbone(f"hf:{tiny_bert}", pooling="pooler", max_length=32), 3)
    done = write_transformers(model, ["neg", "neu", "pos"], tmp_path / "pooler")
    assert done.auto_class == "AutoModelForSequenceClassification", done
    folder = tmp_path / "pooler" / done.folder
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = ["good film", "a long and rather dull evening at the cinema " * 6]
    with torch.no_grad():
        expected = model.eval()(model.backbone.preprocess(texts))
        got = reloaded(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt"))
    torch.testing.assert_close(got.logits, expected, atol=1e-4, rtol=1e-4)
    assert reloaded.config.id2label[2] == "pos"
    mean = Classifier(load_backbone(f"hf:{tiny_bert}", max_length=32), 3)
    refused = write_transformers(mean, ["a", "b", "c"], tmp_path / "mean")
    assert "classifies other features than pooling 'mean'" in refused.skipped
    assert not refused.loads
    assert not (tmp_path / "mean").exists()


def test_the_model_card_escapes_every_data_and_user_string(saved_study, tmp_path):
    """Class names, variant and OOD names, notes (the leakage note quotes training text) reach
    the card as inert text: no HTML, no links, no line that starts a '---' block."""
    from dataclasses import replace

    from safeadapt.results.export import BackboneRef, ExportManifest, TransformersExport
    from safeadapt.study.export import model_card

    config, result = saved_study
    hostile = "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))"
    summary = replace(
        result.summary,
        study="s\n---\ninjected: true",
        notes=(f"leakage: 'train text {hostile}' also in test",),
        recommendation=replace(result.summary.recommendation, reason=hostile),
    )
    entry = summary.variants[0]
    manifest = ExportManifest(
        variant=summary.recommendation.variant,
        protocol="lp",
        backbone=BackboneRef("efficientnet-lite0`) <b>"),
        label_names=(hostile, "ok\n---"),
        seed=0,
        safeadapt="0.1.0",
        settings={"c": hostile},
        transformers=TransformersExport(skipped="x"),
        modality="image",
        run_id="r",
        study=summary.study,
        task=hostile,
    )
    kept = replace(result.runs[0], info={"best_epoch": 0, "lp_C": 1.0})
    card = model_card(summary, manifest, entry, kept)
    body = card.split("\n---\n", 1)[1]  # after the front matter
    for raw in ("<script>", "<img", "](javascript:", "<b>"):
        assert raw not in body, raw
    assert "&lt;script&gt;" in body and "\\[x\\]\\(javascript:alert\\(3\\)\\)" in body
    assert not any(line.strip() == "---" for line in body.splitlines())
    assert "the LP start was kept" in body


def test_the_card_carries_the_hubs_metadata_one_result_per_split(saved_study, tmp_path):
    """base_model / pipeline_tag / library_name and one model-index result per evaluated split,
    each with its own dataset entry, read back with huggingface_hub; only the settings that
    acted are listed."""
    from huggingface_hub import ModelCard

    config, result = saved_study
    folder = export_model(config, tmp_path / "export", variant="ft")
    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "image-classification"
    assert card.data.library_name == "safeadapt"  # no transformers folder for this backbone
    assert card.data.base_model is None  # EfficientNet-Lite0's weights are no Hub model
    splits = {(r.dataset_name, r.dataset_split) for r in card.data.eval_results}
    assert splits == {("mnist", "test"), *(("mnist", s) for s in ("digits", "rotated"))}
    ood = {
        r.dataset_split: r.metric_value for r in card.data.eval_results if r.dataset_split != "test"
    }
    entry = result.summary.variant("ft")
    assert ood["digits"] == round(entry.scores["accuracy:ood:digits"].mean, 4)
    text = (folder / "README.md").read_text()
    assert "lora_r" not in text and "prompts" not in text  # tune: all; no zero-shot head


def test_card_datasets_name_each_split_by_its_own_source(tmp_path):
    from types import SimpleNamespace

    from safeadapt.results import StudySummary
    from safeadapt.study.export import applicable_settings, base_model, card_datasets

    summary = StudySummary.from_json(
        json.loads((Path(__file__).parent / "golden" / "v0" / "summary.json").read_text())
    )
    summary = dataclasses.replace(summary, splits=("test", "ood:shop"))
    task = SimpleNamespace(builtin=None, test="data/test.csv", ood={"shop": "hub:me/shop:test"})
    datasets = card_datasets(SimpleNamespace(task=task), summary)
    assert datasets == {
        "test": ("test.csv", "test.csv", "test"),
        "ood:shop": ("me/shop", "me/shop", "shop"),
    }
    saved = tmp_path / "reviews"  # a save_to_disk folder is named by the folder, not "reviews:x"
    saved.mkdir()
    (saved / "dataset_dict.json").write_text('{"splits": ["test"]}')
    task = SimpleNamespace(builtin=None, test=f"{saved}:test", ood={"shop": f"hub:{saved}:test"})
    named = card_datasets(SimpleNamespace(task=task), summary)
    assert named["test"].name == named["ood:shop"].name == "reviews"
    assert base_model("minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model("hf:google/vit-base-patch16-224") == "google/vit-base-patch16-224"
    assert base_model("efficientnet-lite0") is None
    lora = {"tune": "lora", "lora_r": 8, "last_k": 2, "regularizer": "ldifs", "reg_weight": 10}
    assert applicable_settings(lora) == {k: v for k, v in lora.items() if k != "last_k"}


def test_an_export_carries_its_monitoring_reference_and_monitors_an_image_folder(
    saved_study, tmp_path
):
    """The export writes the reference ``safeadapt monitor`` compares with (ID-validation
    features, logits, fitted thresholds); an image folder of incoming digits, labels by class
    folder, is monitored with it."""
    from PIL import Image

    from safeadapt.monitor import Monitor, Reference

    config, result = saved_study
    folder = export_model(config, tmp_path / "export", variant="ft")
    manifest = json.loads((folder / "safeadapt.json").read_text())
    task = config.task.load()
    reference = Reference.load(folder)
    assert manifest["monitor"]["rows"] == len(reference.labels) == len(task.val)
    assert not reference.same_backbone  # FT moved the backbone: both feature sets are kept
    assert not torch.equal(reference.pretrained, reference.adapted)
    assert {c.split for c in reference.checks} >= {"test"}
    incoming = tmp_path / "incoming"
    for i in range(len(task.test)):
        label = task.label_names[task.test.labels[i]]
        (incoming / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(task.test.inputs[i]).save(incoming / label / f"{i}.png")
    monitored = Monitor(folder, tmp_path / "watch", window=20, label_column="label")
    done = monitored.update([incoming])
    assert len(done.windows) == len(task.test) // 20
    assert all(w.get("accuracy").labelled == 20 for w in done.windows)
    # an FT export: the adapted features' test alone by default (no second backbone pass, no
    # pretrained backbone loaded); with --pretrained-rows the pretrained backbone embeds a
    # seeded sample of each window, its test saying how many rows it compared; the setting
    # keys the state, and 500 (what the test compares) keeps a state's header as before
    header = json.loads((tmp_path / "watch" / "safeadapt-monitor.json").read_text())
    assert "pretrained_rows" not in header["settings"]
    first = done.windows[0].tests
    assert "embedding_pretrained" not in first and first["embedding_adapted"].rows == 20
    assert monitored._models_loaded()[1] is None
    full = Monitor(folder, tmp_path / "full", window=20, pretrained_rows=500)
    assert "pretrained_rows" not in full.settings
    both = full.update([incoming]).windows[0]
    assert both.tests["embedding_pretrained"].rows == both.tests["embedding_adapted"].rows == 20
    assert both.level == pytest.approx(done.windows[0].level * len(first) / len(both.tests))
    window = 40
    assert len(task.test) >= window
    sampled = Monitor(folder, tmp_path / "sampled", window=window, pretrained_rows=20)
    tests = sampled.update([incoming]).windows[0].tests
    assert tests["embedding_pretrained"].rows == 20 and tests["embedding_adapted"].rows == window
    with pytest.raises(InvalidConfig, match="same settings"):
        Monitor(folder, tmp_path / "sampled", window=window).update([incoming])
    with pytest.raises(InvalidConfig, match="removed embedding_pretrained"):
        Monitor(folder, tmp_path / "full", window=20).update([incoming])
    with pytest.raises(InvalidConfig, match="--pretrained-rows"):
        Monitor(folder, tmp_path / "bad", window=20, pretrained_rows=5)

"""Attacks on the real packaged models; an attack that cannot break an undefended model is broken."""

import pytest
import torch

from safeadapt.metrics.robustness import pgd_logits, robust_accuracy
from safeadapt.protocols import FitContext, make_protocol


@pytest.fixture(scope="module")
def lp_image_model(image_task, effnet_factory, feature_cache):
    return (
        make_protocol("lp")
        .fit(FitContext(image_task, effnet_factory, 0, feature_cache, show_progress=False))
        .model
    )


@pytest.fixture(scope="module")
def lp_text_model(text_task, minilm_factory, feature_cache):
    return (
        make_protocol("lp")
        .fit(FitContext(text_task, minilm_factory, 0, feature_cache, show_progress=False))
        .model
    )


def test_pgd_breaks_an_undefended_image_model(lp_image_model, image_task):
    split = image_task.test.sample(48, seed=0)
    acc = robust_accuracy(lp_image_model, split, [0.0, 2 / 255, 32 / 255], steps=10)
    clean = (
        lp_image_model.eval()(lp_image_model.backbone.preprocess(split.inputs)).argmax(1).numpy()
        == split.labels
    ).mean()
    assert acc["0"] == pytest.approx(clean)
    assert acc["0.00784314"] <= acc["0"]
    assert acc["0.12549"] <= 0.05


def test_fgsm_is_weaker_or_equal_to_pgd(lp_image_model, image_task):
    split = image_task.test.sample(48, seed=1)
    eps = [4 / 255]
    pgd = robust_accuracy(lp_image_model, split, eps, steps=10)
    fgsm = robust_accuracy(lp_image_model, split, eps, method="fgsm")
    assert pgd["0.0156863"] <= fgsm["0.0156863"] + 0.05


def test_pixels_stay_valid(lp_image_model, image_task):
    batch = lp_image_model.backbone.preprocess(image_task.test.inputs[:4])
    seen = {}
    real = lp_image_model.forward

    def spy(b):
        seen["min"], seen["max"] = b["pixels"].min().item(), b["pixels"].max().item()
        return real(b)

    lp_image_model.forward = spy
    try:
        pgd_logits(
            lp_image_model, batch, torch.from_numpy(image_task.test.labels[:4]), 0.5, steps=2
        )
    finally:
        del lp_image_model.forward
    assert 0.0 <= seen["min"] and seen["max"] <= 1.0


def test_embedding_space_attack_breaks_an_undefended_text_model(lp_text_model, text_task):
    split = text_task.test.sample(32, seed=0)
    acc = robust_accuracy(lp_text_model, split, [0.0, 2.0], steps=5)
    with torch.no_grad():
        clean = (
            lp_text_model(lp_text_model.backbone.preprocess(split.inputs)).argmax(1).numpy()
            == split.labels
        ).mean()
    assert acc["0"] == pytest.approx(clean) and clean >= 0.5
    assert acc["2"] <= 0.05


class _PixelModel(torch.nn.Module):
    """The classifier as torchattacks sees models: images in [0, 1] -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model({"pixels": x})


def test_matches_torchattacks(lp_image_model, image_task):
    torchattacks = pytest.importorskip(
        "torchattacks", reason="pip install --no-deps torchattacks==3.5.1 (make setup does)"
    )
    split = image_task.test.sample(48, seed=1)
    batch = lp_image_model.backbone.preprocess(split.inputs)
    labels = torch.from_numpy(split.labels)
    lp_image_model.eval()
    eps = 2 / 255
    # FGSM is deterministic: the adversarial logits must agree exactly.
    wrapped = _PixelModel(lp_image_model).eval()  # torchattacks restores the mode it was given
    theirs = torchattacks.FGSM(wrapped, eps=eps)(batch["pixels"], labels)
    with torch.no_grad():
        their_logits = lp_image_model({"pixels": theirs})
    ours = pgd_logits(lp_image_model, batch, labels, eps, steps=1, random_start=False)
    torch.testing.assert_close(ours, their_logits, rtol=1e-4, atol=1e-4)
    # PGD differs only in the random start: robust accuracies agree closely.
    attack = torchattacks.PGD(wrapped, eps=eps, alpha=2.5 * eps / 10, steps=10, random_start=True)
    torch.manual_seed(0)
    adv = attack(batch["pixels"], labels)
    with torch.no_grad():
        their_acc = (lp_image_model({"pixels": adv}).argmax(1) == labels).float().mean().item()
    our_acc = robust_accuracy(lp_image_model, split, [eps], steps=10)[f"{eps:g}"]
    assert abs(our_acc - their_acc) <= 0.1

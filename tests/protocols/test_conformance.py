"""Every registered protocol gets the same battery on a tiny real task (scikit-learn's
parametrize_with_checks idea): it fits, predicts every class shape, is deterministic under a seed,
saves and loads, and rejects an unknown setting with a "did you mean"."""

import pytest
import torch

from safeadapt.errors import InvalidConfig
from safeadapt.evaluation import evaluate
from safeadapt.model import Classifier
from safeadapt.protocols import PROTOCOLS, FitContext, make_protocol

TRAIN = {"epochs": 1, "max_steps": 2, "batch_size": 16}
TINY = {
    "lp": {},
    "lp-vat": {"epochs": 2},
    "lp-udp": {"epochs": 2},
    "lp-soup": {"epochs": 2, "soup_heads": 4},
    "lp-vat-ft": {**TRAIN, "head": {"epochs": 2}},
    "lp-udp-ft": {**TRAIN, "head": {"epochs": 2}},
    "lp-soup-ft": {**TRAIN, "head": {"epochs": 2, "soup_heads": 4}},
    "wise-ft": {**TRAIN, "alphas": [0.0, 0.5, 1.0]},
    "soup-ft": {**TRAIN, "lrs": [1e-4, 3e-4]},
    "zero-shot": {},
}
NEEDS_A_PAIR = {"zero-shot"}  # a CLIP / SigLIP backbone: the tiny pair of conftest.py


def test_every_protocol_has_a_tiny_setting():
    assert set(PROTOCOLS.names()) - set(TINY) <= {"ft", "lp-ft", "ldifs", "l2-sp"}


@pytest.fixture(scope="module")
def task(image_task):
    return image_task.subsample(max_train=48, max_eval=32)


@pytest.mark.parametrize("name", PROTOCOLS.names())
def test_protocol_battery(name, task, effnet_factory, feature_cache, tmp_path, request):
    settings = TINY.get(name, TRAIN)
    if name in NEEDS_A_PAIR:
        from safeadapt.backbones import load_backbone

        clip = request.getfixturevalue("tiny_clip")
        effnet_factory = lambda: load_backbone(f"hf:{clip}")  # noqa: E731
    ctx = FitContext(task, effnet_factory, 0, feature_cache, device="cpu", show_progress=False)
    a = make_protocol(name, settings).fit(ctx)
    scores = evaluate(a.model, task, cache=feature_cache, frozen_backbone=a.frozen_backbone)
    assert set(scores) == {"test", "ood:digits", "ood:rotated"}
    assert 0 <= scores["test"]["accuracy"] <= 1
    b = make_protocol(name, settings).fit(ctx)  # same seed -> same model
    for (k, va), vb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(va.float(), vb.float(), atol=1e-5), (name, k)
    path = a.model.save(tmp_path / "m.safetensors")
    loaded = Classifier(effnet_factory(), task.num_classes).load(path)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    with pytest.raises(InvalidConfig, match="unknown setting 'lrr'"):
        make_protocol(name, {"lrr": 1.0})

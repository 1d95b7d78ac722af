"""WiSE-FT and model soups end to end on the real packaged EfficientNet-Lite0."""

import pytest
import torch

from safeadapt.protocols import FitContext, make_protocol

TRAIN = {"epochs": 1, "max_steps": 3, "batch_size": 16}


@pytest.fixture(scope="module")
def ctx(image_task, effnet_factory, feature_cache):
    task = image_task.subsample(max_train=64, max_eval=48)
    return FitContext(task, effnet_factory, 0, feature_cache, device="cpu", show_progress=False)


def test_wise_ft_picks_alpha_on_validation(ctx):
    result = make_protocol("wise-ft", {**TRAIN, "lr": 3e-3, "alphas": [0.0, 0.5, 1.0]}).fit(ctx)
    curve = result.info["alpha_curve"]
    assert [c["alpha"] for c in curve] == [0.0, 0.5, 1.0]
    best = max(c["val_accuracy"] for c in curve)
    chosen = next(c for c in curve if c["alpha"] == result.info["alpha"])
    assert chosen["val_accuracy"] == best
    # alpha = 0 is the pretrained backbone with the LP head: LP's own validation accuracy
    assert curve[0]["val_accuracy"] == pytest.approx(result.info["lp_val_accuracy"], abs=1e-6)


def test_wise_ft_alpha_one_is_lp_ft(ctx):
    wise = make_protocol("wise-ft", {**TRAIN, "lr": 3e-3, "alphas": [1.0]}).fit(ctx)
    lp_ft = make_protocol("lp-ft", {**TRAIN, "lr": 3e-3}).fit(ctx)
    for (k, a), b in zip(
        wise.model.state_dict().items(), lp_ft.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_greedy_soup_is_never_worse_than_its_best_member_on_val(ctx):
    result = make_protocol("soup-ft", {**TRAIN, "lrs": [1e-4, 1e-3, 1e-2]}).fit(ctx)
    members = [m["val_accuracy_final"] for m in result.info["members"]]
    assert len(members) == 3
    assert result.info["val_accuracy"] >= max(members)
    assert result.info["greedy_kept"][0] == members.index(max(members))

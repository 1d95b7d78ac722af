import torch

import safeadapt.protocols.lp_ft as lp_ft_module
from safeadapt.protocols import FitContext, make_protocol
from safeadapt.run import run_protocol

TINY = {"epochs": 1, "batch_size": 16, "max_steps": 6}


def _changed(a: torch.nn.Module, b: torch.nn.Module) -> int:
    return sum(
        not torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_ft_changes_backbone_weights(text_task, minilm_factory, minilm, feature_cache):
    proto = make_protocol("ft", TINY)
    result = proto.fit(FitContext(text_task, minilm_factory, 0, feature_cache, show_progress=False))
    assert _changed(result.model.backbone, minilm) > 50
    assert not result.frozen_backbone
    assert result.info["steps"] == 6
    assert result.info["trainable_parameters"] > 22_000_000


def test_lp_ft_starts_from_the_lp_head(text_task, minilm_factory, feature_cache, monkeypatch):
    seen = {}
    real = lp_ft_module.finetune_in_context

    def spy(model, *args, **kwargs):
        seen["weight"] = model.head.weight.detach().clone()
        seen["bias"] = model.head.bias.detach().clone()
        return real(model, *args, **kwargs)

    monkeypatch.setattr(lp_ft_module, "finetune_in_context", spy)
    ctx = FitContext(text_task, minilm_factory, 0, feature_cache, show_progress=False)
    lp = make_protocol("lp").fit(ctx)
    result = make_protocol("lp-ft", TINY).fit(ctx)
    torch.testing.assert_close(seen["weight"], lp.model.head.weight)
    torch.testing.assert_close(seen["bias"], lp.model.head.bias)
    # ... and then fine-tunes both head and backbone away from it
    assert not torch.equal(result.model.head.weight, lp.model.head.weight)
    assert _changed(result.model.backbone, lp.model.backbone) > 50


def test_same_seed_same_metrics(image_task, effnet_factory, feature_cache):
    task = image_task.subsample(max_train=64, max_eval=48)
    runs = [
        run_protocol(
            make_protocol("ft", TINY),
            task,
            effnet_factory,
            seed,
            cache=feature_cache,
            show_progress=False,
        )[0]
        for seed in (3, 3, 4)
    ]
    assert runs[0].metrics == runs[1].metrics
    assert runs[0].info["history"] == runs[1].info["history"]
    assert runs[0].info["history"] != runs[2].info["history"]


def test_early_stopping_restores_the_best_epoch(image_task, effnet_factory, feature_cache):
    task = image_task.subsample(max_train=64, max_eval=48)
    proto = make_protocol(
        "ft", {"epochs": 4, "batch_size": 32, "lr": 0.5, "head_lr": 0.5, "patience": 1}
    )
    record, result = run_protocol(
        proto, task, effnet_factory, 0, cache=feature_cache, show_progress=False
    )
    hist = result.info["history"]
    best = max(h["val_accuracy"] for h in hist)
    assert result.info["val_accuracy"] == best
    assert len(hist) <= 4
    from safeadapt.protocols.train_loop import predict_logits

    val_acc = (predict_logits(result.model, task.val).argmax(1).numpy() == task.val.labels).mean()
    assert abs(val_acc - best) < 1e-6


def test_batchnorm_statistics_stay_pretrained_by_default(
    image_task, effnet_factory, effnet, feature_cache
):
    task = image_task.subsample(max_train=64, max_eval=32)
    proto = make_protocol("ft", {"epochs": 1, "batch_size": 32, "max_steps": 2})
    result = proto.fit(FitContext(task, effnet_factory, 0, feature_cache, show_progress=False))
    bn = result.model.backbone.net._bn1
    torch.testing.assert_close(bn.running_mean, effnet.net._bn1.running_mean)
    loose = make_protocol(
        "ft", {"epochs": 1, "batch_size": 32, "max_steps": 2, "freeze_norm_stats": False}
    )
    moved = loose.fit(FitContext(task, effnet_factory, 0, feature_cache, show_progress=False))
    assert not torch.equal(moved.model.backbone.net._bn1.running_mean, effnet.net._bn1.running_mean)

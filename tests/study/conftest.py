"""A tiny real study: the packaged EfficientNet-Lite0 on a small MNIST sample."""

import pytest

TINY_STUDY = {
    "name": "tiny",
    "task": {"builtin": "mnist", "max_train": 60, "max_eval": 40},
    "backbone": {"name": "efficientnet-lite0", "options": {"image_size": 32}},
    "protocols": {
        "lp": {},
        "ft": {"epochs": 1, "max_steps": 2, "batch_size": 16, "lr": 1e-4},
    },
    "seeds": [0, 1],
    "safety": {
        "adv_eps": [0.0, 0.03],
        "adv_steps": 2,
        "adv_max_examples": 16,
        "corruption_kinds": ["gaussian_noise", "contrast"],
        "corruption_severities": [1, 5],
        "corruption_max_examples": 16,
        "reference_tasks": ["digits"],
        "reference_max_train": 40,
        "reference_max_eval": 30,
    },
}


@pytest.fixture
def tiny_study(tmp_path):
    import copy

    raw = copy.deepcopy(TINY_STUDY)
    raw["output"] = str(tmp_path / "out")
    return raw

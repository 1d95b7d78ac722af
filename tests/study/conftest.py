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
        "adversarial": {"eps": [0.0, 0.03], "steps": 2, "max_examples": 16},
        "corruption": {
            "kinds": ["gaussian_noise", "contrast"],
            "severities": [1, 5],
            "max_examples": 16,
        },
        "forgetting": {"reference_tasks": ["digits"], "max_train": 40, "max_eval": 30},
        "effective_robustness": {"c_grid": [0.001, 0.1, 1.0]},
    },
}


@pytest.fixture
def tiny_study(tmp_path):
    import copy

    raw = copy.deepcopy(TINY_STUDY)
    raw["output"] = str(tmp_path / "out")
    return raw

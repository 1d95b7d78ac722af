"""Shared fixtures: the real packaged backbones and small samples of the real built-in data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    from safeadapt.data.features import FeatureCache

    return FeatureCache(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="session")
def text_task():
    from safeadapt.data import load_builtin_task

    return load_builtin_task("vader-sentiment").subsample(max_train=240, max_eval=120, seed=0)


@pytest.fixture(scope="session")
def image_task():
    from safeadapt.data import load_builtin_task

    return load_builtin_task("mnist").subsample(max_train=300, max_eval=150, seed=0)


@pytest.fixture(scope="session")
def minilm_factory():
    from safeadapt.backbones import load_backbone

    return lambda: load_backbone("minilm", max_length=32)


@pytest.fixture(scope="session")
def effnet_factory():
    from safeadapt.backbones import load_backbone

    return lambda: load_backbone("efficientnet-lite0", image_size=32)


@pytest.fixture(scope="session")
def minilm(minilm_factory):
    return minilm_factory()


@pytest.fixture(scope="session")
def effnet(effnet_factory):
    return effnet_factory()

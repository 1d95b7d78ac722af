"""The Protocol interface and its registry. Each protocol module registers itself.

A protocol turns (task, fresh pretrained backbone) into a fitted :class:`Classifier`::

    proto = make_protocol("lp-ft", lr=1e-5)
    result = proto.fit(FitContext(task, backbone_factory=lambda: load_backbone("minilm"), seed=0))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from safeadapt._registry import Registry
from safeadapt.backbones.base import Backbone
from safeadapt.config import build_config, with_overrides
from safeadapt.data.features import FeatureCache
from safeadapt.data.task import Task
from safeadapt.model import Classifier


@dataclass
class FitContext:
    """What a protocol needs: the task, a factory of fresh pretrained backbones, the cache, a seed."""

    task: Task
    backbone_factory: Callable[[], Backbone]
    seed: int = 0
    cache: FeatureCache = field(default_factory=FeatureCache)
    device: str = "auto"
    show_progress: bool = True


@dataclass
class FitResult:
    """A fitted model. ``frozen_backbone``: the backbone is the pretrained one, so evaluation may
    use cached features."""

    model: Classifier
    frozen_backbone: bool
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able facts (chosen C, history, ...)
    artifacts: dict[str, Any] = field(default_factory=dict)  # tensors etc. (e.g. the LP head)


class Protocol(ABC):
    """An adaptation protocol with a typed config (``Config``, a dataclass validated on entry)."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        self.config = build_config(self.Config, config, self._where)
        if overrides:
            self.config = with_overrides(self.config, overrides, self._where)

    @property
    def _where(self) -> str:
        return f"protocol {self.name!r}"

    @abstractmethod
    def fit(self, ctx: FitContext) -> FitResult: ...


PROTOCOLS: Registry[type[Protocol]] = Registry("protocol")


def register_protocol(name: str) -> Callable[[type[Protocol]], type[Protocol]]:
    def decorator(cls: type[Protocol]) -> type[Protocol]:
        cls.name = name
        return PROTOCOLS.register(name)(cls)

    return decorator


def make_protocol(name: str, config: Mapping[str, Any] | None = None, **overrides: Any) -> Protocol:
    """A protocol instance by registered name, with its config checked."""
    return PROTOCOLS.get(name)(config, **overrides)

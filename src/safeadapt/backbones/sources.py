"""Backbone sources: a spec that starts with a registered prefix (``hf:``, ``module:``) is loaded
by its source, which also says whether loading runs code the input names (refused unless the
person running the command allows it, :mod:`safeadapt.trust`) and how to check the spec at
``validate`` without running that code. Adding a source = one module named ``<name>_source.py`` in this
package that registers a :class:`Source`; ``safeadapt.backbones`` imports every such module. A
backbone's LoRA targets are the backbone's own (``Backbone.lora_targets``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safeadapt._registry import Registry
from safeadapt.backbones.base import Backbone


@dataclass(frozen=True)
class Source:
    """``load(spec, options)``: the backbone. ``runs_code(spec, options)``: why loading runs code
    the input names, or None. ``check(spec, options)``: validate without running such code;
    True when the backbone may then be built to finish the check. ``form``: how to write it."""

    prefix: str
    form: str
    load: Callable[[str, dict[str, Any]], Backbone]
    runs_code: Callable[[str, dict[str, Any]], str | None]
    check: Callable[[str, dict[str, Any]], bool]
    # the loaders whose keyword parameters are the source's options (``safeadapt list hf:``)
    loaders: Callable[[], tuple[Callable[..., Any], ...]] = lambda: ()
    # export: the Hub id a model card names as its ``base_model``, or None (not a Hub model)
    base_model: Callable[[str], str | None] = lambda spec: None


SOURCES: Registry[Source] = Registry("backbone source")


def register_source(source: Source) -> Source:
    return SOURCES.register(source.prefix)(source)


def source_of(spec: str) -> Source | None:
    """The source whose prefix starts ``spec``, or None (a registered backbone name)."""
    for prefix in SOURCES.in_order():
        if spec.startswith(prefix):
            return SOURCES.get(prefix)
    return None


def check_options(loader: Any, options: dict[str, Any], spec: str, skip=()) -> None:
    """Options must be parameters of the loader, within their declared ranges: one line naming
    the accepted ones, or the rule broken."""
    from safeadapt.config import check_options as check

    check(loader, options, f"backbone {spec!r}", tuple(skip))

"""``module:<package.module>:<function>``: your own code builds the backbone (e.g. a timm model
wrapped in :class:`TorchModuleBackbone`). It runs code the input names, so it is refused unless
allowed; ``validate`` only finds the module, never imports it."""

from __future__ import annotations

from typing import Any

from safeadapt.backbones.base import Backbone
from safeadapt.backbones.sources import Source, check_options, register_source


def split_module_spec(spec: str) -> tuple[str, str]:
    """``module:<package.module>:<function>`` -> (module, function), or a one-line error."""
    from safeadapt.errors import InvalidConfig

    module_name, _, function = spec.removeprefix("module:").partition(":")
    names = [*module_name.split("."), function]
    if not module_name or not function or not all(n.isidentifier() for n in names):
        raise InvalidConfig(
            f"backbone {spec!r}: write module:<package.module>:<function>, e.g. "
            "module:my_models:make_backbone."
        )
    return module_name, function


def find_module(spec: str) -> None:
    """Check that a ``module:`` spec's module can be found -- without importing it or its
    packages (so nothing of it runs): the folder the command runs in, then ``sys.path``."""
    import importlib.machinery
    import os
    import sys

    from safeadapt.errors import InvalidConfig

    module_name, _ = split_module_spec(spec)
    parts = module_name.split(".")
    search: list[str] | None = [os.getcwd(), *sys.path]
    for i, part in enumerate(parts):
        if i == 0 and part in sys.builtin_module_names and len(parts) == 1:
            return
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if found is None:
            raise InvalidConfig(
                f"backbone {spec!r}: no module {'.'.join(parts[: i + 1])!r} in the current folder "
                "or on PYTHONPATH; run the command from the folder that holds it, or add its "
                "folder to PYTHONPATH."
            )
        search = list(found.submodule_search_locations or [])
        if not search and i < len(parts) - 1:
            raise InvalidConfig(f"backbone {spec!r}: {part!r} is a module, not a package.")


def _from_module(spec: str, options: dict[str, Any]) -> Backbone:
    """``module:<package.module>:<function>``: your own code builds the backbone (e.g. a timm
    model wrapped in :class:`TorchModuleBackbone`); ``options`` are its keyword arguments."""
    import importlib
    import os
    import sys

    from safeadapt.errors import InvalidConfig

    module_name, function = split_module_spec(spec)
    here = os.getcwd()
    added = here not in sys.path  # like `python -m`: the folder the command runs in comes first
    if added:
        sys.path.insert(0, here)
    try:
        builder = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise InvalidConfig(
            f"backbone {spec!r} could not be imported: {err}. Run the command from the folder "
            "that holds the module, or add its folder to PYTHONPATH."
        ) from None
    finally:
        if added and here in sys.path:
            sys.path.remove(here)
    check_options(builder, options, spec)
    backbone = builder(**options)
    if not isinstance(backbone, Backbone):
        raise InvalidConfig(
            f"backbone {spec!r} returned a {type(backbone).__name__}, not a safeadapt Backbone: "
            "wrap a torch module with safeadapt.TorchModuleBackbone(module, feature_dim=...)."
        )
    return backbone


def _runs_code(spec: str, options: dict[str, Any]) -> str | None:
    return f"backbone {spec!r} imports and runs your own Python code"


def _check(spec: str, options: dict[str, Any]) -> bool:
    find_module(spec)
    return False  # building it would run the code


register_source(
    Source(
        prefix="module:",
        form="module:<package.module>:<function>",
        load=_from_module,
        runs_code=_runs_code,
        check=_check,
    )
)

"""Adaptation protocols. Importing this package registers every built-in protocol.

Adding a protocol = one module here that registers itself (``@register_protocol(name)``) + its
test: every module of this package is imported below, and the study config, the run keys and
``safeadapt list`` read the registry.
"""

import importlib
import pkgutil

from safeadapt.protocols.base import (
    PROTOCOLS,
    FitContext,
    FitResult,
    Protocol,
    make_protocol,
    register_protocol,
)

for _module in pkgutil.iter_modules(__path__):  # each protocol module registers its protocols
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PROTOCOLS", "FitContext", "FitResult", "Protocol", "make_protocol", "register_protocol"]

"""Adaptation protocols. Importing this package registers every built-in protocol."""

from safeadapt.protocols import ft, lp, lp_ft  # noqa: F401  (registration)
from safeadapt.protocols.base import (
    PROTOCOLS,
    FitContext,
    FitResult,
    Protocol,
    make_protocol,
    register_protocol,
)

__all__ = ["PROTOCOLS", "FitContext", "FitResult", "Protocol", "make_protocol", "register_protocol"]

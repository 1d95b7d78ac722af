"""Adaptation protocols. Importing this package registers every built-in protocol."""

from safeadapt.protocols import (  # noqa: F401  (registration)
    ft,
    hardened_lp,
    l2sp,
    ldifs,
    lp,
    lp_ft,
    soup,
    wise_ft,
    zero_shot,
)
from safeadapt.protocols.base import (
    PROTOCOLS,
    FitContext,
    FitResult,
    Protocol,
    make_protocol,
    register_protocol,
)

__all__ = ["PROTOCOLS", "FitContext", "FitResult", "Protocol", "make_protocol", "register_protocol"]

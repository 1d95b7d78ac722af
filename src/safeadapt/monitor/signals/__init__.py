"""The monitor's signals, one module each, registered in ``SIGNALS`` (see ``signals.base``);
``stats`` holds their statistics as pure functions of arrays.

The signal modules are imported on first use (``base.registered``), not here: the reference
(``monitor.reference``) fits its thresholds with ``stats`` and every signal reads the reference.
"""

from safeadapt.monitor.signals.base import (
    SIGNALS,
    Estimate,
    Options,
    Proportion,
    Rate,
    Signal,
    Test,
    Window,
    plan,
    register_signal,
    registered,
    signal_for,
)

__all__ = [
    "SIGNALS",
    "Estimate",
    "Options",
    "Proportion",
    "Rate",
    "Signal",
    "Test",
    "Window",
    "plan",
    "register_signal",
    "registered",
    "signal_for",
]

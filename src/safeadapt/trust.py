"""Who may run code named by an input.

A study YAML can name Python code: ``backbone: {name: "module:pkg.mod:build"}`` imports and calls
``build``; ``options: {trust_remote_code: true}`` runs a Hugging Face folder's own modelling code.
In CI the YAML arrives in a pull request, so it is untrusted input: like Hugging Face's remote
code, such code runs only when *the person running the command* allows it -- ``--trust-code`` on
the command line, ``SAFEADAPT_TRUST_CODE=1`` in the environment, or :func:`allow_code` in Python.
A key inside the YAML cannot grant its own trust, and ``safeadapt validate`` never runs it (it
checks the spec's form and that the module can be found, without importing it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

ENV = "SAFEADAPT_TRUST_CODE"
_TRUE = ("1", "true", "yes", "on")


def code_allowed() -> bool:
    """Whether this process may run code that an input names (``SAFEADAPT_TRUST_CODE``)."""
    return os.environ.get(ENV, "").strip().lower() in _TRUE


@contextlib.contextmanager
def allow_code(allowed: bool = True) -> Iterator[None]:
    """Allow (or forbid) code named by inputs inside the block; child processes started inside it
    (Ray workers, ``accelerate launch``) inherit the decision through the environment."""
    before = os.environ.get(ENV)
    os.environ[ENV] = "1" if allowed else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def refuse(what: str) -> None:
    """Raise the error for ``what`` (e.g. "backbone 'module:x:y' imports and runs x.y") when
    code is not allowed in this process."""
    from safeadapt.errors import UntrustedCode

    if code_allowed():
        return
    raise UntrustedCode(
        f"{what}: refused, because an input may not run code on its own say-so. If you wrote or "
        f"read that code, allow it when you run the command: --trust-code (or {ENV}=1; in "
        "Python: with safeadapt.allow_code(): ...). A setting inside the study cannot allow it."
    )

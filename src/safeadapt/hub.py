"""Reaching the Hugging Face Hub: fail fast offline, keep using the local cache.

Without a network, ``transformers`` retries the Hub for about 25 s before it gives up (measured
here with DNS failing). :func:`hub_options` probes the Hub's host once per process (a TCP connect
with a 3 s timeout) and, when it cannot be reached or ``HF_HUB_OFFLINE=1``, loads with
``local_files_only=True``: a model already in the cache still loads, any other fails at once.
A local folder is never probed, nor the Hub behind a proxy (``HTTPS_PROXY`` and the like: the
direct connection may be blocked while the proxy works).
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

PROBE_SECONDS = 3.0
PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def offline_env() -> bool:
    return any(os.environ.get(k) == "1" for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.cache
def hub_reachable(endpoint: str | None = None) -> bool:
    """Whether a TCP connection to the Hub's host opens within ``PROBE_SECONDS``."""
    url = urlparse(endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def hub_options(model_id: str) -> dict[str, bool]:
    """Extra ``from_pretrained`` arguments: ``local_files_only`` when the Hub is out of reach."""
    if Path(model_id).expanduser().exists():
        return {}
    if offline_env():
        return {"local_files_only": True}
    if any(os.environ.get(k) for k in PROXIES):  # a direct probe says nothing behind a proxy
        return {}
    return {} if hub_reachable() else {"local_files_only": True}


def offline_hint(model_id: str) -> str:
    """What to do when ``model_id`` did not load and the Hub was out of reach."""
    if Path(model_id).expanduser().exists() or hub_options(model_id) == {}:
        return ""
    why = "Offline mode is on (HF_HUB_OFFLINE=1)" if offline_env() else "The Hub is unreachable"
    return (
        f" {why} and {model_id!r} is not in the local Hugging Face cache: download "
        "it once online (or copy the cache), or give a local folder with config.json and weights."
    )


def remote_code_error(model_id: str, err: Exception):
    """The error for a model that ships its own Python code while ``trust_remote_code`` is off,
    or None when ``err`` is something else."""
    from safeadapt.errors import InvalidConfig

    text = str(err)
    if "trust_remote_code" not in text and "custom code" not in text:
        return None
    return InvalidConfig(
        f"Hugging Face model {model_id!r} ships its own Python code (auto_map in config.json), "
        "which safeadapt does not run by default: read that code, then set the backbone option "
        "'trust_remote_code: true' and pass --trust-code when you run the command."
    )

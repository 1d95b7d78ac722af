"""Where safeadapt keeps its caches (built-in data, frozen features)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root of safeadapt's cache: ``$SAFEADAPT_HOME`` or ``~/.cache/safeadapt``."""
    root = os.environ.get("SAFEADAPT_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "safeadapt"


def data_dir() -> Path:
    return home() / "data"


def feature_dir() -> Path:
    return home() / "features"

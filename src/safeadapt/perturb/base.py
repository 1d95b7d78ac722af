"""The corruption registries and severities shared by the image and text corruptions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from safeadapt._registry import Registry

ImageCorruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
TextCorruption = Callable[[str, int, np.random.Generator], str]

IMAGE_CORRUPTIONS: Registry[ImageCorruption] = Registry("image corruption")
TEXT_CORRUPTIONS: Registry[TextCorruption] = Registry("text corruption")
SEVERITIES = {"image": (1, 2, 3, 4, 5), "text": (1, 2, 3)}

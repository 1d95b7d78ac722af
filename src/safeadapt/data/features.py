"""Frozen-backbone features, computed once per (backbone, split) and cached on disk.

The key is the content: the backbone's fingerprint (weights + feature-changing config), the split's
fingerprint (inputs + labels) and the requested layers. Every LP-family run and every seed reuses
the file. Writes are atomic; a corrupt file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from safeadapt.backbones.base import Backbone
from safeadapt.data.task import Split
from safeadapt.paths import feature_dir
from safeadapt.progress import progress

log = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(
    backbone: Backbone,
    split: Split,
    batch_size: int = 64,
    layers: Sequence[str] = (),
    show_progress: bool = True,
) -> dict[str, Tensor]:
    """Features of every example: ``{"features": (N, D), <layer>: (N, D_l)}`` on CPU, float32."""
    was_training = backbone.training
    backbone.eval()
    device = backbone.device
    chunks: dict[str, list[Tensor]] = {}
    starts = range(0, len(split), batch_size)
    for start in progress(starts, f"features {backbone.name} / {split.name}", show_progress):
        raw = split.inputs[start : start + batch_size]
        batch = {k: v.to(device) for k, v in backbone.preprocess(raw).items()}
        feats, taps = backbone.forward_layers(batch, layers)
        for key, value in {"features": feats, **taps}.items():
            chunks.setdefault(key, []).append(value.float().cpu())
    backbone.train(was_training)
    return {k: torch.cat(v) for k, v in chunks.items()}


class FeatureCache:
    """Disk cache of frozen features under ``root`` (default ``$SAFEADAPT_HOME/features``)."""

    def __init__(self, root: str | Path | None = None, batch_size: int = 64) -> None:
        self.root = Path(root) if root is not None else feature_dir()
        self.batch_size = batch_size
        self.hits = 0
        self.misses = 0
        self._fingerprints: weakref.WeakKeyDictionary[Backbone, tuple[int, str]] = (
            weakref.WeakKeyDictionary()
        )

    def key(self, backbone: Backbone, split: Split, layers: Sequence[str] = ()) -> str:
        h = hashlib.sha256()
        for part in (self._backbone_fingerprint(backbone), split.fingerprint(), ",".join(layers)):
            h.update(part.encode())
            h.update(b"|")
        return h.hexdigest()[:32]

    def _backbone_fingerprint(self, backbone: Backbone) -> str:
        # Hashing weights costs ~0.1 s for 20M parameters; reuse it while no parameter changed.
        version = sum(p._version for p in backbone.parameters())
        cached = self._fingerprints.get(backbone)
        if cached is None or cached[0] != version:
            cached = (version, backbone.fingerprint())
            self._fingerprints[backbone] = cached
        return cached[1]

    def path(self, key: str) -> Path:
        return self.root / f"{key}.safetensors"

    def get(
        self,
        backbone: Backbone,
        split: Split,
        layers: Sequence[str] = (),
        show_progress: bool = True,
    ) -> dict[str, Tensor]:
        """Cached features of ``split`` (and ``layers``), computing and storing them on a miss."""
        from safetensors.torch import load_file, save_file

        path = self.path(self.key(backbone, split, layers))
        if path.is_file():
            try:
                out = load_file(str(path))
                if out["features"].shape[0] == len(split):
                    self.hits += 1
                    return out
                log.warning("feature cache %s has the wrong length; recomputing", path)
            except Exception as err:  # corrupt or truncated file: recompute, never trust it
                log.warning("feature cache %s is unreadable (%s); recomputing", path, err)
        self.misses += 1
        out = extract_features(backbone, split, self.batch_size, layers, show_progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in out.items()}, str(tmp))
        tmp.replace(path)
        return out

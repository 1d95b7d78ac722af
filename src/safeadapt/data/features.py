"""Frozen-backbone features, computed once per (backbone, split) and cached on disk.

The key is the content: the backbone's fingerprint (weights + feature-changing config), the split's
fingerprint (inputs + labels) and the requested layers. Every LP-family run and every seed reuses
the file. Each entry stores a SHA-256 of its tensors, checked on every load; writes are atomic
(per-process temporary name, fsync, rename). A damaged file is recomputed with a warning, never
trusted.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from safeadapt import distributed
from safeadapt.backbones.base import Backbone
from safeadapt.data.task import Split
from safeadapt.files import load_verified, save_verified
from safeadapt.paths import feature_dir
from safeadapt.progress import progress

log = logging.getLogger(__name__)


STORED_KEY = "features"  # the pooled features' name in a cache file; the other tensors are layers


@dataclass(frozen=True)
class SplitFeatures:
    """One split's backbone features, in the split's order, on CPU, float32: ``features``
    ``(N, D)`` (what the head reads) and, when asked for, ``layers`` -- a tap's name to its
    ``(N, D_l)`` features from the same forward pass."""

    features: Tensor
    layers: Mapping[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.features.shape[0]

    def to_tensors(self) -> dict[str, Tensor]:
        """The cache file's tensors (the store boundary)."""
        return {STORED_KEY: self.features, **self.layers}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor]) -> SplitFeatures:
        layers = {k: v for k, v in tensors.items() if k != STORED_KEY}
        return cls(tensors[STORED_KEY], layers)


def length_order(inputs, lengths: Sequence[int] | None = None) -> list[int] | None:
    """For texts, the indices sorted by length -- ``lengths`` (e.g. token counts) or characters
    -- so batches of similar lengths pad little (the caller restores the input order); else
    ``None``."""
    if isinstance(inputs, list | tuple) and inputs and isinstance(inputs[0], str):
        key = lengths if lengths is not None else [len(t) for t in inputs]
        return sorted(range(len(inputs)), key=lambda i: key[i])
    return None


def in_batches(inputs, batch_size: int, lengths: Sequence[int] | None = None):
    """``(positions, raw inputs)`` per batch, texts grouped by length."""
    order = length_order(inputs, lengths)
    for start in range(0, len(inputs), batch_size):
        if order is None:
            yield (
                range(start, min(start + batch_size, len(inputs))),
                inputs[start : start + batch_size],
            )
        else:
            idx = order[start : start + batch_size]
            yield idx, [inputs[i] for i in idx]


def restore(chunks: list[Tensor], positions: list) -> Tensor:
    """Concatenated batch outputs put back in input order."""
    out = torch.cat(chunks)
    flat = [i for pos in positions for i in pos]
    if flat == list(range(len(flat))):
        return out
    result = torch.empty_like(out)
    result[torch.as_tensor(flat)] = out
    return result


def extract_features(
    backbone: Backbone,
    split: Split,
    batch_size: int = 64,
    layers: Sequence[str] = (),
    show_progress: bool = True,
) -> SplitFeatures:
    """Features of every example (and of ``layers``) on CPU, float32, in the split's order. Texts are batched by length (about half the padded tokens of input
    order on VADER; ``bench/bench_foundation.py``), in ``torch.inference_mode`` and the
    backbone's precision (``Backbone.precision``); features are returned as float32."""
    was_training = backbone.training
    backbone.eval()
    device = backbone.device
    chunks: dict[str, list[Tensor]] = {}
    positions = []
    batches = list(in_batches(split.inputs, batch_size, backbone.input_lengths(split.inputs)))
    batches = distributed.shard(batches)  # under a launcher: every world_size-th batch
    for pos, raw in progress(batches, f"features {backbone.name} / {split.name}", show_progress):
        batch = {k: v.to(device) for k, v in backbone.preprocess(raw).items()}
        with torch.inference_mode(), backbone.inference_precision():
            feats, taps = backbone.forward_layers(batch, layers)
            outputs = {k: v.float().cpu() for k, v in {STORED_KEY: feats, **taps}.items()}
        positions.append(pos)
        for key, value in outputs.items():  # concatenated outside: ordinary tensors
            chunks.setdefault(key, []).append(value)
    backbone.train(was_training)
    positions, chunks = gather_chunks(positions, chunks)
    return SplitFeatures.from_tensors({k: restore(v, positions) for k, v in chunks.items()})


def gather_chunks(
    positions: list, chunks: dict[str, list[Tensor]]
) -> tuple[list, dict[str, list[Tensor]]]:
    """Every process's batch outputs and their positions (one process: unchanged)."""
    if not distributed.launched():
        return positions, chunks
    mine = [(list(pos), {k: v[i] for k, v in chunks.items()}) for i, pos in enumerate(positions)]
    everyone = distributed.gather(mine)
    merged: dict[str, list[Tensor]] = {}
    for _, outputs in everyone:
        for key, value in outputs.items():
            merged.setdefault(key, []).append(value)
    return [pos for pos, _ in everyone], merged


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
    ) -> SplitFeatures:
        """Cached features of ``split`` (and ``layers``), computing and storing them on a miss."""
        path = self.path(self.key(backbone, split, layers))
        out = self._load_verified(path, len(split)) if path.is_file() else None
        if distributed.all_agree(out is not None):  # several processes: all hit, or all extract
            self.hits += 1
            return out
        self.misses += 1
        out = extract_features(backbone, split, self.batch_size, layers, show_progress)
        if distributed.is_main():
            save_verified({k: v.contiguous() for k, v in out.to_tensors().items()}, path)
        return out

    @staticmethod
    def _load_verified(path: Path, n: int) -> SplitFeatures | None:
        """The entry at ``path`` if its checksum and length match; else ``None`` (with a warning:
        a damaged file is recomputed, never trusted)."""
        try:
            out = SplitFeatures.from_tensors(load_verified(path))
        except Exception as err:  # corrupt, truncated or tampered: recompute
            log.warning("feature cache %s is damaged (%s); recomputing", path, err)
            return None
        if len(out) != n:
            log.warning("feature cache %s has the wrong length; recomputing", path)
            return None
        return out


def features_of(
    model,
    split: Split,
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> Tensor:
    """The backbone features of one split: from the cache for a frozen (pretrained) backbone,
    extracted afresh for an adapted one."""
    if frozen_backbone and cache is not None:
        return cache.get(model.backbone, split, show_progress=show_progress).features
    return extract_features(model.backbone, split, show_progress=show_progress).features

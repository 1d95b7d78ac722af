"""A classification model = backbone + linear head; checkpoints are safetensors (never pickle)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from safeadapt.backbones.base import Backbone, Batch
from safeadapt.errors import CheckpointError


class Classifier(nn.Module):
    """``logits = head(backbone(batch))``, head: ``nn.Linear(feature_dim, num_classes)``."""

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, num_classes)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def forward(
        self, batch: Batch, layers: tuple[str, ...] = (), pooled: bool = True
    ) -> Tensor | tuple[Tensor, dict]:
        """Logits ``(B, K)``; with ``layers``, also the taps of the same forward pass, pooled
        ``{layer: (B, D_l)}`` or per position ``(B, P, D_l)`` (feature-space regularisers use
        them without a second pass)."""
        if not layers:
            return self.head(self.backbone(batch))
        feats, taps = self.backbone.forward_layers(batch, layers, pooled=pooled)
        return self.head(feats), taps

    @classmethod
    def from_head(cls, backbone: Backbone, weight: Tensor, bias: Tensor) -> Classifier:
        """A classifier whose head is ``weight`` ``(K, D)`` and ``bias`` ``(K,)`` (e.g. an LP head)."""
        model = cls(backbone, weight.shape[0])
        model.set_head(weight, bias)
        return model

    def set_head(self, weight: Tensor, bias: Tensor) -> None:
        """Copy a head in (e.g. an LP head as the LP-FT initialisation)."""
        if weight.shape != self.head.weight.shape or bias.shape != self.head.bias.shape:
            raise ValueError(
                f"head of shape {tuple(weight.shape)} does not fit {tuple(self.head.weight.shape)}"
            )
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write ``path`` (safetensors) atomically, with the backbone config in its metadata."""
        from safetensors.torch import save_model

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "backbone": json.dumps(self.backbone.config()),
            "num_classes": str(self.num_classes),
            **{k: json.dumps(v) for k, v in (metadata or {}).items()},
        }
        from safetensors import safe_open

        from safeadapt.files import save_verified

        tmp = path.with_name(f".{path.name}.{os.getpid()}.model.tmp")
        try:
            save_model(self, str(tmp), metadata=meta)  # drops tied duplicates
            with safe_open(str(tmp), framework="pt") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        finally:
            tmp.unlink(missing_ok=True)
        save_verified(tensors, path, meta)  # + checksum, fsync, atomic rename
        return path

    def load(self, path: str | Path) -> Classifier:
        """Load weights saved by :meth:`save` into this model; fails clearly on any mismatch."""
        from safeadapt.files import load_state, read_safetensors

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"Checkpoint {path} does not exist.")
        try:
            tensors, meta = read_safetensors(path)  # read once; checksum verified when present
        except Exception as err:
            raise CheckpointError(
                f"Checkpoint {path} is corrupt or not a safetensors file ({err}). Delete it and "
                "rerun; finished runs are recomputed only if their checkpoint is needed."
            ) from err
        saved_classes = meta.get("num_classes")
        if saved_classes is not None and saved_classes != str(self.num_classes):
            raise CheckpointError(
                f"Checkpoint {path} has a head of {saved_classes} classes, but the model it is "
                f"loaded into has {self.num_classes} (its label names): they do not belong "
                "together."
            )
        try:
            missing, unexpected = load_state(self, tensors)
        except Exception as err:  # a tensor of another shape
            raise CheckpointError(f"Checkpoint {path} does not fit this model ({err}).") from err
        if missing or unexpected:
            raise CheckpointError(
                f"Checkpoint {path} does not match this model: missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}."
            )
        try:
            saved = json.loads(meta.get("backbone", "{}"))
        except ValueError:
            saved = None
        if not isinstance(saved, dict):
            raise CheckpointError(f"Checkpoint {path} names no readable backbone in its metadata.")
        if saved and saved.get("name") != self.backbone.config().get("name"):
            raise CheckpointError(
                f"Checkpoint {path} was saved from backbone {saved.get('name')!r}, "
                f"not {self.backbone.name!r}."
            )
        return self

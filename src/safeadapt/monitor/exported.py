"""Reading an export folder (``safeadapt export``): its manifest and the classifier it rebuilds.
Below the study room, so that monitoring reads exports without the study's machinery."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safeadapt.errors import CheckpointError
from safeadapt.results.export import ExportManifest

MANIFEST = "safeadapt.json"
MODEL = "model.safetensors"


def read_manifest(folder: str | Path) -> ExportManifest:
    """The export's :class:`~safeadapt.results.export.ExportManifest`."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a safeadapt export: no {MANIFEST}.")
    try:
        raw = json.loads(path.read_text())
    except ValueError as err:
        raise CheckpointError(f"{path} is not readable JSON ({err}); export again.") from None
    try:
        return ExportManifest.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        what = f"no entry {err}" if isinstance(err, KeyError) else str(err)
        raise CheckpointError(
            f"{path} is not a safeadapt export manifest ({what}); export again."
        ) from None


def classifier(manifest: ExportManifest, weights: Path):
    """The classifier a manifest describes (backbone from its packaged / hub weights, then the
    exported tensors loaded over it), in eval mode."""
    from safeadapt.model import Classifier

    model = Classifier(pretrained_backbone(manifest), manifest.num_classes)
    return model.load(weights).eval()


def pretrained_backbone(manifest: ExportManifest):
    """The backbone the export was adapted from, with its pretrained weights."""
    from safeadapt.backbones import load_backbone

    ref = manifest.backbone
    return load_backbone(ref.name, **ref.build_options()).eval()


def load_exported(folder: str | Path):
    """The exported :class:`~safeadapt.model.Classifier`, weights loaded and in eval mode."""
    folder = Path(folder)
    return classifier(read_manifest(folder), folder / MODEL)


def content_key(folder: str | Path, names: tuple[str, ...]) -> str:
    """SHA-256 over the bytes of the named files of ``folder`` (what a monitor state watches)."""
    h = hashlib.sha256()
    for name in names:
        path = Path(folder) / name
        h.update(f"{name}|".encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()

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
    """The export's :class:`~safeadapt.results.export.ExportManifest`, read strictly."""
    from safeadapt.readback import read_object

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a safeadapt export: no {MANIFEST}.")
    raw = read_object(path, "export the model again")
    return ExportManifest.from_json(raw, str(path))


def verify_export(folder: str | Path, manifest: ExportManifest) -> dict[str, str]:
    """The export is one unit: each file its manifest lists has the SHA-256 recorded there (an
    export made before the list: nothing to compare), and the weights' own metadata name the
    run (id and content key) and the number of classes the manifest claims. ``DataError`` --
    naming the file and what differs -- when a file was edited or swapped after the export.
    Returns the SHA-256 of each file it read, so a caller keys on them without reading again."""
    from safeadapt.errors import DataError
    from safeadapt.files import file_sha256

    folder = Path(folder)
    again = "export the model again (safeadapt export STUDY --out NEW_FOLDER)"
    hashes: dict[str, str] = {}
    for name, digest in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing; {MANIFEST} lists it as part of the export; "
                            f"{again}.")  # fmt: skip
        hashes[name] = file_sha256(path)
        if hashes[name] != digest:
            raise DataError(f"{path} is not the file that was exported (its SHA-256 differs "
                            f"from the one {MANIFEST} records): it was edited or swapped; "
                            f"{again}.")  # fmt: skip
    wrong = weights_disagree(folder / MODEL, {"run_id": manifest.run_id, "key": manifest.run_key,
                                              "num_classes": manifest.num_classes})  # fmt: skip
    if wrong:
        key, held, claimed = wrong
        raise DataError(f"{folder / MODEL} holds the weights of {key} {held!r}, but "
                        f"{MANIFEST} describes {key} {claimed!r}: the two do not belong "
                        f"together (edited, or the weights were swapped); {again}.")  # fmt: skip
    return hashes


def weights_disagree(path: Path, claims: dict) -> tuple[str, object, object] | None:
    """The first of ``claims`` (run id, run key, class count) that the weights' own metadata
    contradict, as ``(key, held, claimed)``; ``None`` when none does (a claim or a metadata
    entry that is absent contradicts nothing)."""
    from safeadapt.files import safetensors_metadata

    meta = safetensors_metadata(path)
    for key, claimed in claims.items():
        if key not in meta or claimed is None:
            continue
        try:
            held = json.loads(meta[key])
        except ValueError:
            held = meta[key]
        if str(held) != str(claimed):
            return key, held, claimed
    return None


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
    """The exported :class:`~safeadapt.model.Classifier`, weights loaded and in eval mode (the
    export's files checked against its manifest first: :func:`verify_export`)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    verify_export(folder, manifest)
    return classifier(manifest, folder / MODEL)


def export_key(folder: str | Path, names: tuple[str, ...], known: dict[str, str]) -> str:
    """SHA-256 over the names and SHA-256s of the named files of ``folder`` (those in ``known``
    are not read again): what a monitor state watches."""
    from safeadapt.files import file_sha256

    h = hashlib.sha256()
    for name in names:
        h.update(f"{name}|{known.get(name) or file_sha256(Path(folder) / name)}|".encode())
    return h.hexdigest()


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

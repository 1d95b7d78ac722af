"""Files written so that a kill loses nothing, and tensors saved with their checksum.

Every writer of safeadapt (run records, summaries, reports, CSVs, feature caches, checkpoints)
goes through here: a per-process temporary name, fsync, then an atomic rename, so readers see
the old file or the whole new one, and a failed write (disk full) leaves no temporary behind.
Tensors are stored as safetensors with a SHA-256 of their content in the metadata, checked on
every load: a damaged file is an error, never a silent wrong result.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from safeadapt.errors import CheckpointError


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then fsync and rename ``tmp`` onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        # the user's umask, as for any file they create: some writers (safetensors) make 0600
        # files, which a monitor running as a service account then cannot read
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (read from /proc where it can be, without changing it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restored at once
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    _atomic(path, lambda tmp: tmp.write_text(text))


def write_parquet_atomic(path: Path, frame) -> None:
    """A pandas frame to ``path`` (parquet), atomically."""
    _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (sorted by name)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_verified(
    tensors: dict[str, Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write a safetensors file with its content checksum in the metadata, atomically."""
    from safetensors.torch import save_file

    meta = {**(metadata or {}), "sha256": tensor_digest(tensors)}
    _atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file, read once; its checksum verified when it
    carries one (files written by :func:`save_verified`). safetensors never unpickles."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "sha256" in meta and tensor_digest(tensors) != meta["sha256"]:
        raise CheckpointError(f"{path}: content does not match its checksum")
    return tensors, meta


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file, from its header alone (no tensor is read);
    :class:`CheckpointError` when it is not a readable safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # missing, truncated or not safetensors at all
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}).") from None


def load_verified(path: Path) -> dict[str, Tensor]:
    """Read a file written by :func:`save_verified`; :class:`CheckpointError` when its content
    does not match the stored checksum (or it has none)."""
    tensors, meta = read_safetensors(path)
    if "sha256" not in meta:
        raise CheckpointError(f"{path} carries no checksum (written by an older safeadapt)")
    return tensors


def load_state(module: torch.nn.Module, tensors: dict[str, Tensor]) -> tuple[list[str], list[str]]:
    """``module.load_state_dict(tensors, strict=False)``; returns (missing, unexpected) keys. A
    key is not missing when its tensor shares storage with a loaded one (weights tied in the
    module are saved once). A shape mismatch raises ``RuntimeError``."""
    missing, unexpected = module.load_state_dict(tensors, strict=False)
    state = module.state_dict(keep_vars=True)
    loaded = {state[k].data_ptr() for k in tensors if k in state}
    return [k for k in missing if state[k].data_ptr() not in loaded], list(unexpected)

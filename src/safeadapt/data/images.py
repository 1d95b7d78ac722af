"""Images as safeadapt reads them: every file opened by us (a missing, non-regular, truncated or
decompression-bomb file is an error that names it), converted to 8-bit RGB or greyscale by its
real bit depth (16-bit, float, palette, LA and CMYK images are scaled, not clipped), resized, and
stacked only when the split fits in free memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.errors import DataError


def _available_bytes() -> int | None:
    """Memory this machine can still give (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def to_rgb8(img):
    """A PIL image as 8-bit RGB by its real bit depth: 16-bit greyscale (``I;16*``) and 32-bit
    (``I``) are scaled from their 0-65535 range, float (``F``) from 0-1 (or 0-255), and palette,
    LA, CMYK and the rest converted by PIL. (PIL's own ``I;16 -> RGB`` clips at 255: every
    16-bit photo would be white.)"""
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img, dtype=np.float64)
        low, high = (0.0, 65535.0)
        if values.size and (values.min() < 0 or values.max() > 65535):  # a real 32-bit image
            low, high = float(values.min()), float(values.max())
        scaled = (values - low) / max(high - low, 1.0) * 255.0
        img = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        top = values.max() if values.size else 1.0
        if values.size and (values.min() < 0 or top > 255):
            values = (values - values.min()) / max(top - values.min(), 1e-12)
            top = 1.0
        scale = 255.0 if top <= 1.0 else 1.0
        img = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")
    elif mode == "P" or mode == "PA":
        img = img.convert("RGBA")
    elif mode == "LA":
        img = img.convert("L")
    return img.convert("RGB")


def _open_image(item: Any, root: Path | None, split_name: str, row: int):
    """A decoded PIL image from a path (relative to ``root``), a ``{"path", "bytes"}`` record
    (image folders) or bytes; a file that is missing, not regular, truncated, not an image or a
    decompression bomb is a one-line error naming it."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    data, name = None, None
    if isinstance(item, dict):
        data, name = item.get("bytes"), item.get("path")
    elif isinstance(item, bytes):
        data = item
    else:
        name = item
    where = f"Split {split_name!r}, row {row}"
    if data is None:
        path = Path(name) if Path(name).is_absolute() or root is None else root / name
        if not path.exists():
            raise DataError(
                f"{where}: image {str(name)!r} does not exist; paths in an image column are "
                "relative to the table's folder."
            )
        if not path.is_file():
            raise DataError(
                f"{where}: image {str(path)!r} is not a regular file (a pipe or device would "
                "never end); give image files."
            )
        source: Any = path
        name = str(path)
    else:
        source = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(
            f"{where}: image {name!r} is too large to decode safely ({err}); resize it below "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels."
        ) from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{where}: image {name!r} could not be read ({' '.join(str(err).split())[:160]}); "
            "it may be truncated or not an image: re-save or remove it."
        ) from None
    return img


def images_to_array(
    images: list, split_name: str, size: int | None, root: Path | None = None
) -> np.ndarray:
    """Decoded images (PIL images, arrays, paths -- relative paths from a table are resolved
    against the table's folder -- or image-folder records) as one ``(N, H, W, 3)`` uint8 array,
    each converted by its real bit depth (:func:`to_rgb8`). The whole array must fit in memory
    this machine has available, checked before it is allocated."""
    from PIL import Image

    arrays = []
    for i, img in enumerate(images):
        if isinstance(img, str | bytes | dict):
            img = _open_image(img, root, split_name, i)
        elif img is None:
            raise DataError(f"Split {split_name!r}, row {i}: the image is missing.")
        elif not isinstance(img, Image.Image):
            img = Image.fromarray(np.asarray(img, dtype=np.uint8))
        img = to_rgb8(img)
        if size is not None:
            img = img.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(img))
        if i == 0:
            need = arrays[0].nbytes * len(images) * 2  # the list and the stacked copy
            free = _available_bytes()
            if free is not None and need > free:
                raise DataError(
                    f"Split {split_name!r}: {len(images):,} images of {arrays[0].shape} need "
                    f"{need / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB this machine "
                    "has free; set a smaller task 'image_size' or 'max_train' / 'max_eval'."
                )
        if arrays[-1].shape != arrays[0].shape:
            raise DataError(
                f"Split {split_name!r}, row {i}: image of shape {arrays[-1].shape} differs from "
                f"{arrays[0].shape}; resize the images to one size (in a study, task "
                "'image_size' does it)."
            )
    return np.stack(arrays)

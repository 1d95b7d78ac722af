"""Images are read by their real bit depth and mode, and a bad file is a one-line error naming it
(issue 23: 16-bit PNGs loaded as pure white; truncated files and decompression bombs)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from safeadapt.data.images import images_to_array, to_rgb8
from safeadapt.errors import DataError


def _png16(path, array: np.ndarray) -> None:
    """A 16-bit PNG written by hand (PIL cannot write 48-bit RGB): greyscale (H, W) or RGB
    (H, W, 3) uint16."""
    h, w = array.shape[:2]
    colour = 0 if array.ndim == 2 else 2
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def _read(path) -> np.ndarray:
    return images_to_array([path.name], "test", None, path.parent)[0]


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 64], [32768, 65535]], dtype=np.uint16)
    _png16(tmp_path / "g16.png", values)
    out = _read(tmp_path / "g16.png")
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], [[0, 64], [128, 255]])  # was 255 everywhere


def test_16_bit_rgb_keeps_its_colours(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint16)
    rgb[0, 0] = (65535, 0, 0)
    rgb[1, 1] = (0, 0, 257 * 100)
    _png16(tmp_path / "rgb16.png", rgb)
    out = _read(tmp_path / "rgb16.png")
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (0, 0, 100)
    assert tuple(out[0, 1]) == (0, 0, 0)


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda: _palette(), (200, 10, 30)),
        (lambda: Image.new("LA", (2, 2), (90, 255)), (90, 90, 90)),
        (lambda: Image.new("CMYK", (2, 2), (0, 255, 255, 0)), (255, 0, 0)),
        (lambda: Image.new("I", (2, 2), 65535), (255, 255, 255)),
        (lambda: Image.new("F", (2, 2), 0.5), (128, 128, 128)),
        (lambda: Image.new("1", (2, 2), 1), (255, 255, 255)),
    ],
)
def test_every_mode_becomes_8_bit_rgb(tmp_path, make, expected):
    img = make()
    assert tuple(np.asarray(to_rgb8(img))[0, 0]) == expected
    if img.mode not in ("F", "I", "CMYK"):  # PNG round-trips the rest
        img.save(tmp_path / "x.png")
        assert tuple(_read(tmp_path / "x.png")[0, 0]) == expected


def _palette():
    img = Image.new("P", (2, 2), 1)
    img.putpalette([0, 0, 0, 200, 10, 30] + [0] * 762)
    return img


def test_a_truncated_png_names_the_file(tmp_path):
    Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"image '.*cut\.png' could not be read"):
        _read(tmp_path / "cut.png")


def test_a_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    Image.new("L", (40, 40)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # 1,600 px: over the limit
    with pytest.raises(DataError, match=r"image '.*bomb\.png' is too large to decode safely"):
        _read(tmp_path / "bomb.png")


def test_a_missing_image_names_the_file(tmp_path):
    with pytest.raises(DataError, match="image 'nope.png' does not exist"):
        _read(tmp_path / "nope.png")


def test_an_image_folder_of_16_bit_pngs_is_not_white(tmp_path):
    """Through ``load_task`` (Hugging Face's imagefolder lists the files; we decode them)."""
    from safeadapt.data import load_task

    for label, level in (("dark", 4000), ("light", 60000)):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True)
        for i in range(4):
            _png16(folder / f"{i}.png", np.full((32, 32), level + i, dtype=np.uint16))
    root = str(tmp_path / "train")
    task = load_task(root, root, image_column="image")
    pairs = zip(task.test.inputs, task.test.labels, strict=True)
    means = {task.label_names[y]: x.mean() for x, y in pairs}
    assert means["dark"] < 30 and means["light"] > 220

"""Image corruptions (uint8 ``(N, H, W[, C])``), five severities, after Hendrycks & Dietterich
(ICLR 2019): every ImageNet-C type that needs no extra asset -- ``gaussian_noise``, ``shot_noise``,
``impulse_noise``, ``gaussian_blur``, ``defocus_blur``, ``motion_blur``, ``zoom_blur``,
``brightness``, ``contrast``, ``saturate``, ``pixelate``, ``jpeg``, ``elastic`` (no snow, frost,
fog, spatter or glass blur). Severity parameters are the published ones -- CIFAR-10-C values for
small images (shorter side <= 64 px, e.g. MNIST), ImageNet-C values for larger ones -- except
where said: ``motion_blur`` is a one-sided Gaussian line kernel at a random angle (ImageNet-C
calls ImageMagick's), ``pixelate`` downsamples with an antialiased bilinear filter and
upsamples to blocks (ImageNet-C's box round trip leaves a 28-px image unchanged at 0.95),
``elastic`` is a smooth random displacement field whose largest shift is 1-6 % of the image side (our parameterisation, not ImageNet-C's affine + elastic mix).
``saturate`` needs colour: on greyscale images it changes nothing, and the corruption family
leaves it out. This is a generated set, not ImageNet-C's published images or its mCE protocol.
"""

from __future__ import annotations

import io

import numpy as np

from safeadapt.perturb.base import IMAGE_CORRUPTIONS

# (CIFAR-10-C, ImageNet-C) parameters per severity 1..5
_NOISE_SIGMA = ((0.04, 0.06, 0.08, 0.09, 0.10), (0.08, 0.12, 0.18, 0.26, 0.38))
_BLUR_SIGMA = ((0.4, 0.6, 0.7, 0.8, 1.0), (1.0, 2.0, 3.0, 4.0, 6.0))
_CONTRAST = ((0.75, 0.5, 0.4, 0.3, 0.15), (0.4, 0.3, 0.2, 0.1, 0.05))
_JPEG_QUALITY = ((80, 65, 58, 50, 40), (25, 18, 15, 10, 7))
_SHOT = ((500, 250, 100, 75, 50), (60, 25, 12, 5, 3))
_IMPULSE = ((0.01, 0.02, 0.03, 0.05, 0.07), (0.03, 0.06, 0.09, 0.17, 0.27))
_DEFOCUS = (
    ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
)
_MOTION = (
    ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
    ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
)
_ZOOM = (
    tuple(np.arange(1, end, 0.01) for end in (1.06, 1.11, 1.16, 1.21, 1.26)),
    tuple(
        np.arange(1, end, step)
        for end, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
    ),
)
_BRIGHTNESS = ((0.05, 0.1, 0.15, 0.2, 0.3), (0.1, 0.2, 0.3, 0.4, 0.5))
_SATURATE = (
    ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
)
_PIXELATE = ((0.95, 0.9, 0.85, 0.75, 0.65), (0.6, 0.5, 0.4, 0.3, 0.25))
_ELASTIC = (0.01, 0.02, 0.03, 0.045, 0.06)  # largest shift / image side (ours)


def _param(table: tuple[tuple, tuple], image: np.ndarray, severity: int):
    small = min(image.shape[:2]) <= 64
    return table[0 if small else 1][severity - 1]


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)


@IMAGE_CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    x = _to_float(image)
    return _to_uint8(x + rng.normal(size=x.shape) * _param(_NOISE_SIGMA, image, severity))


@IMAGE_CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sigma = _param(_BLUR_SIGMA, image, severity)
    sigmas = (sigma, sigma, 0) if image.ndim == 3 else (sigma, sigma)  # never across channels
    return _to_uint8(gaussian_filter(_to_float(image), sigma=sigmas))


@IMAGE_CORRUPTIONS.register("contrast")
def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    x = _to_float(image)
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((x - mean) * _param(_CONTRAST, image, severity) + mean)


@IMAGE_CORRUPTIONS.register("jpeg")
def jpeg(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=_param(_JPEG_QUALITY, image, severity))
    buf.seek(0)
    return np.asarray(Image.open(buf)).astype(np.uint8).reshape(image.shape)


def _per_channel(image: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn`` to each (H, W) channel of a float image."""
    if image.ndim == 2:
        return fn(image)
    return np.stack([fn(image[..., c]) for c in range(image.shape[-1])], axis=-1)


@IMAGE_CORRUPTIONS.register("shot_noise")
def shot_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c = _param(_SHOT, image, severity)
    return _to_uint8(rng.poisson(_to_float(image) * c) / c)


@IMAGE_CORRUPTIONS.register("impulse_noise")
def impulse_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on a share ``amount`` of the values (half each)."""
    x = _to_float(image)
    hit = rng.random(x.shape) < _param(_IMPULSE, image, severity)
    salt = rng.random(x.shape) < 0.5
    return _to_uint8(np.where(hit, salt.astype(float), x))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    half = max(8, int(np.ceil(radius)))
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    kernel = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    if kernel.sum() == 0:
        kernel[half, half] = 1.0
    kernel /= kernel.sum()
    return gaussian_filter(kernel, alias_blur)


@IMAGE_CORRUPTIONS.register("defocus_blur")
def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import convolve

    radius, alias = _param(_DEFOCUS, image, severity)
    kernel = _disk(radius, alias)
    return _to_uint8(
        _per_channel(_to_float(image), lambda ch: convolve(ch, kernel, mode="reflect"))
    )


@IMAGE_CORRUPTIONS.register("motion_blur")
def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A one-sided line kernel of Gaussian weights (``sigma``) up to ``radius`` pixels, at a
    random angle in [-45, 45] degrees (an approximation of ImageMagick's motion blur)."""
    from scipy.ndimage import convolve

    radius, sigma = _param(_MOTION, image, severity)
    angle = np.deg2rad(rng.uniform(-45, 45))
    size = 2 * int(radius) + 1
    kernel = np.zeros((size, size))
    for t in np.linspace(0, radius, 4 * int(radius) + 1):
        r = int(round(radius + t * np.sin(angle)))
        c = int(round(radius + t * np.cos(angle)))
        kernel[r, c] += np.exp(-(t**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return _to_uint8(
        _per_channel(_to_float(image), lambda ch: convolve(ch, kernel, mode="reflect"))
    )


def _clipped_zoom(channel: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of a (H, W) channel by ``factor`` and crop back to (H, W)."""
    from scipy.ndimage import zoom

    h, w = channel.shape
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = zoom(channel[top : top + ch, left : left + cw], factor, order=1)
    ot, ol = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[ot : ot + h, ol : ol + w]


@IMAGE_CORRUPTIONS.register("zoom_blur")
def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    x = _to_float(image)
    factors = _param(_ZOOM, image, severity)
    out = x.copy()
    for f in factors:
        out += _per_channel(x, lambda ch, f=f: _clipped_zoom(ch, float(f)))
    return _to_uint8(out / (len(factors) + 1))


def _hsv(x: np.ndarray):
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    return rgb_to_hsv, hsv_to_rgb


@IMAGE_CORRUPTIONS.register("brightness")
def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The HSV value channel raised by ``c`` (greyscale: the intensity)."""
    x, c = _to_float(image), _param(_BRIGHTNESS, image, severity)
    if x.ndim == 2 or x.shape[-1] == 1:
        return _to_uint8(x + c)
    to_hsv, to_rgb = _hsv(x)
    hsv = to_hsv(x[..., :3])
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _to_uint8(np.concatenate([to_rgb(hsv), x[..., 3:]], axis=-1))


@IMAGE_CORRUPTIONS.register("saturate")
def saturate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The HSV saturation scaled and shifted; greyscale images have none (returned unchanged)."""
    if image.ndim == 2 or image.shape[-1] < 3:
        return image.copy()
    x = _to_float(image)
    scale, shift = _param(_SATURATE, image, severity)
    to_hsv, to_rgb = _hsv(x)
    hsv = to_hsv(x[..., :3])
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return _to_uint8(np.concatenate([to_rgb(hsv), x[..., 3:]], axis=-1))


@IMAGE_CORRUPTIONS.register("pixelate")
def pixelate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    factor = _param(_PIXELATE, image, severity)
    small = (max(1, int(w * factor)), max(1, int(h * factor)))
    pil = Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image)
    # antialiased down (PIL's BOX round trip is lossless at factors near 1), blocky back up
    out = pil.resize(small, Image.BILINEAR).resize((w, h), Image.NEAREST)
    return np.asarray(out).astype(np.uint8).reshape(image.shape)


@IMAGE_CORRUPTIONS.register("elastic")
def elastic(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Resample along a smooth random displacement field (Simard et al. 2003): Gaussian-filtered
    uniform noise (sigma = 1/10 of the side), scaled so its largest shift is a share of the
    side."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    x = _to_float(image)
    h, w = x.shape[:2]
    side = min(h, w)
    fields = []
    for _ in range(2):
        f = gaussian_filter(rng.uniform(-1, 1, (h, w)), side / 10)
        fields.append(f / (np.abs(f).max() + 1e-12) * _ELASTIC[severity - 1] * side)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = [rows + fields[0], cols + fields[1]]
    return _to_uint8(
        _per_channel(x, lambda ch: map_coordinates(ch, coords, order=1, mode="reflect"))
    )

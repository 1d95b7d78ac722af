"""Image preprocessing in plain torch (torchvision is not required)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def images_to_pixels(images: np.ndarray, size: int) -> Tensor:
    """uint8 ``(N, H, W)`` or ``(N, H, W, C)`` -> float RGB pixels in [0, 1], ``(N, 3, size, size)``.

    Normalisation is *not* applied here: it belongs to the model's forward pass, so attacks and
    corruptions can work in pixel space.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    if x.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        x = x.unsqueeze(1)
    else:  # (N, H, W, C) -> (N, C, H, W)
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp_(0.0, 1.0).contiguous()

"""How images and fields meet: pixel-centre coordinates in [-1, 1] and values in [-1, 1]."""

import torch
from torch import Tensor

from hypersiren.core.checks import require_count, require_tensor


def pixel_grid(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Pixel-centre coordinates in [-1, 1], ``(H*W, 2)`` as (row, col), row-major.

    Pixel centres (not corners) make grids of different resolutions tile the same
    square, so rendering at 4x size is a true upsampling of the same image.
    """
    height, width = require_count(height, "height", low=1), require_count(width, "width", low=1)
    rows = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
    cols = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
    return torch.cartesian_prod(rows, cols)


def to_model_space(images: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` -> float ``[-1, 1]``, the range the SIREN is trained on."""
    return require_tensor(images, "images").float() / 127.5 - 1.0


def to_unit_range(values: Tensor) -> Tensor:
    """Model space ``[-1, 1]`` -> ``[0, 1]`` (clamped), the range metrics and figures use."""
    return ((values + 1.0) / 2.0).clamp(0.0, 1.0)

"""Ground-truth derivatives of a pixel image, in the units of SIREN coordinates.

A SIREN's derivatives (``diffops``) are taken w.r.t. pixel-centre coordinates in
[-1, 1] (``coordinates.cell_centres``): neighbouring rows are 2/H apart, columns
2/W apart. Finite differences measured per pixel are therefore rescaled by
H/2 (per row step) and W/2 (per column step), so that a SIREN that fits the
image has the same derivatives as these filters report.

Filters (both as in the paper's code, which uses ``scipy.ndimage.sobel`` and
``scipy.ndimage.laplace``; borders replicate the edge pixel, scipy's "reflect"):

- gradient: the 3x3 Sobel operator divided by 8, i.e. a central difference
  (f[i+1] - f[i-1]) / 2 smoothed by (1, 2, 1) / 4 across the other axis. The
  smoothing keeps the target gradient of a noisy photograph fittable.
- Laplacian: the 5-point stencil, the sum of the second differences
  f[i-1] - 2 f[i] + f[i+1] along rows and along columns (each scaled by its own
  spacing, so non-square images are handled).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

_SOBEL_ROW = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 8.0  # d/drow, per pixel
_SECOND_DIFFERENCE_ROW = torch.tensor([[0.0, 1.0, 0.0], [0.0, -2.0, 0.0], [0.0, 1.0, 0.0]])  # d²/drow², per pixel²


def _filter(images: Tensor, kernels: Tensor) -> Tensor:
    """Apply each of K 3x3 ``kernels (K, 3, 3)`` to every image plane: ``(..., H, W) -> (..., K, H, W)``."""
    if images.dim() < 2:
        raise ValueError(f"images must be (..., H, W), got shape {tuple(images.shape)}")
    planes = images.reshape(-1, 1, *images.shape[-2:])
    padded = F.pad(planes, (1, 1, 1, 1), mode="replicate")
    filtered = F.conv2d(padded, kernels.to(images).unsqueeze(1))  # (planes, K, H, W)
    return filtered.reshape(*images.shape[:-2], *filtered.shape[1:])


def sobel_gradient(images: Tensor) -> Tensor:
    """Spatial gradient ``(..., H, W) -> (..., 2, H, W)``: (∂/∂row, ∂/∂col) per unit of [-1, 1] coordinate."""
    height, width = images.shape[-2:]
    scale = torch.tensor([height / 2.0, width / 2.0], dtype=images.dtype, device=images.device)
    return _filter(images, torch.stack([_SOBEL_ROW, _SOBEL_ROW.T])) * scale.view(2, 1, 1)


def discrete_laplacian(images: Tensor) -> Tensor:
    """5-point Laplacian ``(..., H, W) -> (..., H, W)`` per unit² of [-1, 1] coordinate."""
    height, width = images.shape[-2:]
    second_differences = _filter(images, torch.stack([_SECOND_DIFFERENCE_ROW, _SECOND_DIFFERENCE_ROW.T]))
    along_rows, along_cols = second_differences.unbind(dim=-3)
    return along_rows * (height / 2.0) ** 2 + along_cols * (width / 2.0) ** 2

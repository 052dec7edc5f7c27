"""Inpainting by rule, no learning: the baselines a trained model must beat."""

import torch
from torch import Tensor

from hypersiren.functional import pixel_grid


def mean_image_fill(mean_image: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Missing pixels from the mean training image ``(C, H, W)``, observed ones kept."""
    return torch.where(mask, image, mean_image.expand_as(image))


def nearest_pixel_fill(image: Tensor, mask: Tensor, max_elements: int = 2**25) -> Tensor:
    """Every missing pixel takes the value of its nearest observed pixel (Euclidean; ties arbitrary).

    ``image (B, C, H, W)``, ``mask (B, 1, H, W)`` -> ``(B, C, H, W)``. Distances are taken
    only from the m missing to the k observed pixels, ``(B, m, k)`` (m·k <= (H·W)²/4),
    in slices of images to bound memory.
    """
    batch, channels, height, width = image.shape
    grid = pixel_grid(height, width, image.device)  # (HW, 2)
    flat_mask, flat_image = mask.flatten(1), image.flatten(2)  # (B, HW), (B, C, HW)
    num_observed, num_missing = int(flat_mask.sum(dim=1).max()), int((~flat_mask).sum(dim=1).max())
    if num_missing == 0:
        return image.clone()
    # topk of a 0/1 row lists its 1s first: all observed (resp. missing) indices, then padding.
    observed = flat_mask.float().topk(num_observed, dim=1).indices  # (B, k)
    is_observed = flat_mask.gather(1, observed)  # (B, k): False marks padding, never chosen
    missing = (~flat_mask).float().topk(num_missing, dim=1).indices  # (B, m): padding is observed, maps to itself
    per_slice = max(1, max_elements // (num_observed * num_missing))
    nearest = []
    for start in range(0, batch, per_slice):
        rows = slice(start, start + per_slice)
        distances = torch.cdist(grid[missing[rows]], grid[observed[rows]])  # (b, m, k)
        distances.masked_fill_(~is_observed[rows, None, :], float("inf"))
        nearest.append(observed[rows].gather(1, distances.argmin(dim=2)))  # (b, m)
    source = torch.cat(nearest).unsqueeze(1).expand(-1, channels, -1)
    target = missing.unsqueeze(1).expand(-1, channels, -1)
    filled = flat_image.scatter(2, target, flat_image.gather(2, source))
    return filled.view(batch, channels, height, width)

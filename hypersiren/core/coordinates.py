"""Where signals meet functions: cell-centre coordinates in [-1, 1] for a grid of any number of dimensions."""

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from hypersiren.core.checks import require_count


def cell_centres(shape: Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """The centres of a grid's cells in [-1, 1]: ``shape = (S1, …, SD)`` -> ``(S1·…·SD, D)``, row-major.

    ``(H, W)`` gives pixel centres as (row, col), ``(T,)`` a series' sample times, ``(D, H, W)`` voxel
    centres. Centres (not corners) make grids of different resolutions tile the same cube, so rendering
    at 4x the size is a true upsampling of the same signal (LIIF's ``make_coord`` convention).
    """
    sides = require_grid(shape)
    axes = [(torch.arange(side, device=device, dtype=torch.float32) + 0.5) * (2.0 / side) - 1.0 for side in sides]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (S1, …, SD, D)
    return grid.reshape(math.prod(sides), len(sides))


def require_grid(shape: Sequence[int]) -> tuple[int, ...]:
    """A grid's ``shape`` checked, as integers: one or more sizes >= 1, named as users know them in errors."""
    if isinstance(shape, int | torch.SymInt) or not len(shape):
        raise ValueError(f"shape must be a sequence of one or more sizes, e.g. (64, 64), got {shape!r}")
    return tuple(require_count(side, name, low=1) for side, name in zip(shape, _axis_names(len(shape))))


def _axis_names(dims: int) -> tuple[str, ...]:
    """Names for error messages: height and width for an image, as users know them."""
    return {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}.get(
        dims, tuple(f"axis {axis}" for axis in range(dims))
    )

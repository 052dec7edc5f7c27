"""The one rendering code path: a SIREN as a pure function of (params, coords).

Both the standalone ``Siren`` and the hypernetwork produce ``SirenParams``; every
image, derivative and benchmark in hypersiren is rendered by ``render``.
"""

from typing import NamedTuple

import torch
from torch import Tensor


class LayerParams(NamedTuple):
    """One linear layer for a batch of B networks."""

    weight: Tensor  # (B, fan_in, fan_out): transposed w.r.t. nn.Linear so a layer is x @ weight
    bias: Tensor  # (B, fan_out)


SirenParams = list[LayerParams]


def render(params: SirenParams, coords: Tensor, first_omega: float = 30.0, hidden_omega: float = 30.0) -> Tensor:
    """Evaluate B SIRENs: ``coords (B, N, D_in) -> values (B, N, D_out)``.

    Each layer is one batched GEMM with the bias fused in (``baddbmm``). omega
    scales the weights (B·in·out elements) rather than the activations
    (B·N·out elements): the same function for a fraction of the memory traffic.
    Params with batch 1 are shared by every row of ``coords``.
    """
    check_coords(params, coords)
    batch, num_points, _ = coords.shape
    shared = params[0].weight.shape[0] == 1 and batch != 1
    hidden = coords.reshape(1, batch * num_points, -1) if shared else coords
    last = len(params) - 1
    for index, (weight, bias) in enumerate(params):
        if index == last:
            hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight)
        else:
            omega = first_omega if index == 0 else hidden_omega
            hidden = torch.sin(torch.baddbmm(omega * bias.unsqueeze(1), hidden, omega * weight))
    return hidden.reshape(batch, num_points, -1)


def check_coords(params: SirenParams, coords: Tensor) -> None:
    """Raise a ValueError naming the problem if ``coords`` cannot be rendered by ``params``."""
    if coords.dim() != 3:
        raise ValueError(f"coords must be (B, N, D_in), got shape {tuple(coords.shape)}")
    params_batch, in_features, _ = params[0].weight.shape
    if coords.shape[-1] != in_features:
        raise ValueError(
            f"coords have {coords.shape[-1]} dims per point but the SIREN takes {in_features}: "
            f"pass coords of shape (B, N, {in_features})"
        )
    if params_batch not in (1, coords.shape[0]):
        raise ValueError(f"params are for {params_batch} samples but coords for {coords.shape[0]}")
    if not coords.is_floating_point():
        raise ValueError(f"coords must be floating point, got {coords.dtype}")


def pixel_grid(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Pixel-centre coordinates in [-1, 1], ``(H*W, 2)`` as (row, col), row-major.

    Pixel centres (not corners) make grids of different resolutions tile the same
    square, so rendering at 4x size is a true upsampling of the same image.
    """
    rows = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
    cols = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
    return torch.cartesian_prod(rows, cols)

"""A fitted coordinate network seen as images: its values, gradient magnitude and Laplacian
on a pixel grid over any square window, at any resolution.

A continuous representation can be sampled beyond the grid it was fitted on:
``extent=0.5`` at 1024x1024 zooms 4x into the centre (interpolation), ``extent=2``
shows the network outside [-1, 1] (extrapolation). Points are processed in
chunks so a 1024x1024 render (1M points) fits in a few hundred MB.
"""

import torch
from einops import rearrange
from torch import Tensor, nn

from hypersiren.core.coordinates import cell_centres
from hypersiren.core.diffops import divergence, gradient


def window_grid(height: int, width: int, extent: float = 1.0, device: torch.device | str | None = None) -> Tensor:
    """Pixel-centre coordinates of an ``height x width`` image of the window [-extent, extent]², ``(H*W, 2)``."""
    return extent * cell_centres((height, width), device=device)


@torch.no_grad()
def render_image(net: nn.Module, height: int, width: int, extent: float = 1.0, chunk: int = 65_536) -> Tensor:
    """``net``'s values on the window, model space ``(C, H, W)``."""
    coords = window_grid(height, width, extent, device=next(net.parameters()).device)
    values = torch.cat([net(part) for part in coords.split(chunk)])
    return rearrange(values, "(h w) c -> c h w", h=height, w=width)


def derivative_images(
    net: nn.Module, height: int, width: int, extent: float = 1.0, chunk: int = 16_384
) -> tuple[Tensor, Tensor]:
    """Gradient magnitude and Laplacian of a scalar ``net`` on the window, each ``(1, H, W)``.

    Derivatives are per unit of coordinate (as ``finite_differences`` reports for pixel images).
    """
    coords = window_grid(height, width, extent, device=next(net.parameters()).device)
    gradient_norms, laplacians = [], []
    for part in coords.split(chunk):
        part = part.detach().requires_grad_(True)
        with torch.enable_grad():  # derivatives need autograd even when the caller renders under no_grad
            field_gradient = gradient(net(part), part)
            gradient_norms.append(field_gradient.detach().norm(dim=-1, keepdim=True))
            laplacians.append(divergence(field_gradient, part).detach())  # ∇·∇, reusing the gradient
    return tuple(
        rearrange(torch.cat(parts), "(h w) c -> c h w", h=height, w=width) for parts in (gradient_norms, laplacians)
    )

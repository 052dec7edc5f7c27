"""Differential operators of a rendered field w.r.t. its coordinates (autograd).

A SIREN's derivatives are SIRENs too, so these are smooth and can be supervised.
All keep the graph (``create_graph=True``) so losses on them train the network.
``coords`` must have ``requires_grad=True`` before rendering.
"""

import torch
from torch import Tensor


def gradient(values: Tensor, coords: Tensor) -> Tensor:
    """``values (..., N, 1)``, ``coords (..., N, D)`` -> ``(..., N, D)``: ∇ of a scalar field."""
    if values.shape[-1] != 1:
        raise ValueError(f"gradient needs a scalar field (..., N, 1), got {tuple(values.shape)}; pick a channel first")
    (grad,) = torch.autograd.grad(values, coords, torch.ones_like(values), create_graph=True)
    return grad


def divergence(field: Tensor, coords: Tensor) -> Tensor:
    """``field (..., N, D)``, ``coords (..., N, D)`` -> ``(..., N, 1)``: Σ_i ∂field_i/∂x_i."""
    if field.shape[-1] != coords.shape[-1]:
        raise ValueError(f"divergence needs a field with {coords.shape[-1]} components, got {field.shape[-1]}")
    return sum(gradient(field[..., i : i + 1], coords)[..., i : i + 1] for i in range(coords.shape[-1]))


def laplacian(values: Tensor, coords: Tensor) -> Tensor:
    """``values (..., N, 1)``, ``coords (..., N, D)`` -> ``(..., N, 1)``: ∇·∇ of a scalar field."""
    return divergence(gradient(values, coords), coords)

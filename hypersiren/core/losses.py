"""Losses that supervise a field by its values, its gradient or its Laplacian: a SIREN's derivatives
are SIRENs too, so each is exact by autograd."""

from torch import Tensor

from hypersiren.core.diffops import gradient, laplacian


def image_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all values (model space, [-1, 1])."""
    return (prediction - target).square().mean()


def gradient_mse(values: Tensor, coords: Tensor, target_gradient: Tensor) -> Tensor:
    """Supervise a scalar field by its spatial gradient only (the constant is lost)."""
    return (gradient(values, coords) - target_gradient).square().mean()


def laplacian_mse(values: Tensor, coords: Tensor, target_laplacian: Tensor) -> Tensor:
    """Supervise a scalar field by its Laplacian only (constant and linear part are lost)."""
    return (laplacian(values, coords) - target_laplacian).square().mean()

"""Training losses: data term and the two regularizers of the paper's hypernetwork."""

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hypersiren.diffops import gradient, laplacian
from hypersiren.functional import SirenParams

if TYPE_CHECKING:
    from hypersiren.model import Prediction


def image_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all values (model space, [-1, 1])."""
    return (prediction - target).square().mean()


def latent_l2(latent: Tensor) -> Tensor:
    """Mean squared latent: keeps the code space compact, a Gaussian-prior stand-in."""
    return latent.square().mean()


def weight_l2(params: SirenParams) -> Tensor:
    """Mean squared generated parameter (weights and biases, as in the paper's code).

    Keeps generated SIRENs near the init scale, i.e. away from high-frequency noise.
    """
    tensors = [tensor for layer in params for tensor in layer]
    # vector_norm reduces in one pass; square().sum() would materialize a temporary per tensor
    return torch.stack([torch.linalg.vector_norm(t) for t in tensors]).square().sum() / sum(t.numel() for t in tensors)


def gradient_mse(values: Tensor, coords: Tensor, target_gradient: Tensor) -> Tensor:
    """Supervise a scalar field by its spatial gradient only (the constant is lost)."""
    return (gradient(values, coords) - target_gradient).square().mean()


def laplacian_mse(values: Tensor, coords: Tensor, target_laplacian: Tensor) -> Tensor:
    """Supervise a scalar field by its Laplacian only (constant and linear part are lost)."""
    return (laplacian(values, coords) - target_laplacian).square().mean()


def hypernetwork_loss(
    prediction: "Prediction", target: Tensor, latent_weight: float = 0.1, weight_weight: float = 100.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's objective: image MSE + latent_weight·latent L2 + weight_weight·generated-weight L2.

    ``target (B, N, C)`` in model space. Returns the total and its detached terms for logging.
    """
    terms = {
        "image_mse": image_mse(prediction.values, target),
        "latent_l2": latent_l2(prediction.latent),
        "weight_l2": weight_l2(prediction.params),
    }
    total = terms["image_mse"] + latent_weight * terms["latent_l2"] + weight_weight * terms["weight_l2"]
    return total, {name: value.detach() for name, value in terms.items()}

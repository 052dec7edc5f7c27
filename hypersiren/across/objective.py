"""The across-signal training objective: a data term and the paper's two regularizers."""

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hypersiren.core.losses import image_mse
from hypersiren.core.render import SirenParams

if TYPE_CHECKING:
    from hypersiren.across.config import TrainConfig
    from hypersiren.across.data import Batch
    from hypersiren.across.model import Prediction


def latent_l2(latent: Tensor) -> Tensor:
    """Mean squared latent: keeps the code space compact, a Gaussian-prior stand-in."""
    return latent.square().mean()


def weight_l2(params: SirenParams) -> Tensor:
    """Mean squared generated parameter (weights and biases, as in the paper's code).

    Keeps generated SIRENs near the init scale, i.e. away from high-frequency noise.
    """
    tensors = [tensor for layer in params for tensor in layer]
    if not tensors:  # a decoder without generated weights (decoder="pixel")
        return torch.zeros(())
    # vector_norm reduces in one pass; square().sum() would materialize a temporary per tensor
    return torch.stack([torch.linalg.vector_norm(t) for t in tensors]).square().sum() / sum(t.numel() for t in tensors)


def missing_log_mse(prediction: Tensor, target: Tensor, observed: Tensor, floor: float = 1e-5) -> Tensor:
    """Mean over images of log MSE on the points not observed, plus plain MSE on the observed ones.

    ``prediction, target (B, N, C)``, ``observed (B, N)`` bool. Held-out quality is the
    mean per-image PSNR, -10·log10(MSE), of the pixels the model did not see (observed
    ones are pasted back): this loss is on that metric's scale. Plain MSE lets the hard
    images with 10 pixels drown the 24 missing pixels of an image with 1000, where the
    error is 100x smaller and the classical interpolators are hard to beat. On the
    observed points plain MSE: a log there (measured with floors of 1e-5 and 1e-3)
    makes the model chase the last dB of pixels it was given, and it learns to copy
    its input at the cost of 0.5-3 dB on the missing ones. ``floor`` (~56 dB) keeps
    the log finite. The observed MSE is pooled over the batch, so under DDP the loss is
    the mean of the processes' losses rather than the whole batch's.
    """
    error = (prediction - target).square().mean(dim=-1)  # (B, N)
    missing = ~observed
    count = missing.sum(dim=1)  # (B,)
    log_mse = torch.log((error * missing).sum(dim=1) / count.clamp_min(1) + floor)
    has_missing = count > 0  # an image with every point observed has no missing term
    missing_term = (log_mse * has_missing).sum() / has_missing.sum().clamp_min(1)
    return missing_term + (error * observed).sum() / observed.sum().clamp_min(1)


def hypernetwork_loss(
    prediction: "Prediction",
    target: Tensor,
    latent_weight: float = 0.1,
    params_weight: float = 100.0,
    observed: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's objective: image MSE + latent_weight·latent L2 + params_weight·L2 of the generated SIREN parameters.

    ``target (B, N, C)`` in model space. With ``observed (B, N)`` bool, the image term is
    ``missing_log_mse`` instead of the MSE. Returns the total and its
    detached terms for logging.
    """
    terms = {
        "image_mse": image_mse(prediction.values, target),
        "latent_l2": latent_l2(prediction.latent),
        "weight_l2": weight_l2(prediction.params),
    }
    image_term = terms["image_mse"]
    if observed is not None:
        terms["missing_log_mse"] = image_term = missing_log_mse(prediction.values, target, observed)
    total = image_term + latent_weight * terms["latent_l2"] + params_weight * terms["weight_l2"]
    return total, {name: value.detach() for name, value in terms.items()}


def recipe_loss(prediction: "Prediction", batch: "Batch", train: "TrainConfig") -> tuple[Tensor, dict[str, Tensor]]:
    """``hypernetwork_loss`` of a ``data.recipe_batch`` with ``train``'s weights and image term (``train.loss``)."""
    return hypernetwork_loss(
        prediction,
        batch.target,
        latent_weight=train.latent_weight,
        params_weight=train.params_weight,
        observed=batch.observed if train.loss == "log_mse" else None,
    )

"""Image-quality metrics on [0, 1] values, one number per image."""

import torch
from torch import Tensor

from hypersiren.core.checks import require_tensor


def mse(prediction: Tensor, target: Tensor, where: Tensor | None = None) -> Tensor:
    """Mean squared error per image: ``(B, ...) -> (B,)``.

    With a bool ``where`` (broadcastable), over those values only."""
    require_tensor(prediction, "prediction")
    require_tensor(target, "target")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    error = (prediction.float() - target.float()).square()
    if where is None:
        return error.flatten(1).mean(dim=1)
    where = where.expand_as(error).to(error.dtype)
    return (error * where).flatten(1).sum(dim=1) / where.flatten(1).sum(dim=1)


def psnr(prediction: Tensor, target: Tensor, max_value: float = 1.0, where: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: ``(B, ...) -> (B,)``; ``where`` as in ``mse``.

    Per image, then averaged by the caller: the convention of the inpainting
    literature (averaging MSE first would let the easiest images dominate).
    Clamped at 1e-10 MSE (100 dB) so an exact copy gives a finite number.
    """
    return 10.0 * torch.log10(max_value**2 / mse(prediction, target, where).clamp_min(1e-10 * max_value**2))

"""Image-quality metrics on [0, 1] values, one number per image."""

import torch
from torch import Tensor


def mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per image: ``(B, ...) -> (B,)``."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    return (prediction.float() - target.float()).square().flatten(1).mean(dim=1)


def psnr(prediction: Tensor, target: Tensor, max_value: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: ``(B, ...) -> (B,)``.

    Per image, then averaged by the caller: the convention of the inpainting
    literature (averaging MSE first would let the easiest images dominate).
    Clamped at 1e-10 MSE (100 dB) so an exact copy gives a finite number.
    """
    return 10.0 * torch.log10(max_value**2 / mse(prediction, target).clamp_min(1e-10 * max_value**2))

"""Figures users look at: context | prediction | ground truth."""

import torch
from torch import Tensor
from torchvision.utils import make_grid

UNOBSERVED_GRAY = 0.5


def context_image(image: Tensor, mask: Tensor) -> Tensor:
    """Observed pixels of ``image (B, C, H, W)`` in [0, 1], the rest gray."""
    return torch.where(mask, image, torch.full_like(image, UNOBSERVED_GRAY))


def comparison_grid(image: Tensor, mask: Tensor, prediction: Tensor, padding: int = 2) -> Tensor:
    """One row per image: context | prediction | truth. All inputs in [0, 1]; returns ``(C, H', W')``."""
    if prediction.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"prediction {tuple(prediction.shape)} must match image {tuple(image.shape)}")
    triples = torch.stack([context_image(image, mask), prediction, image], dim=1)  # (B, 3, C, H, W)
    return make_grid(triples.flatten(0, 1), nrow=3, padding=padding, pad_value=1.0)

"""A user's own photos: read as the model takes them, and completed at any size with the user's pixels kept.

The model sees a photo at its own size (``data.image_size``, e.g. 32x32), but a user asks for a
completion at any size. Where a pixel was observed, the user already has it, at every resolution:
``keep_observed`` puts the photo itself there, at the output's resolution, so that "observed pixels
kept" holds at every size, not only at the model's.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from hypersiren.across.data import decode_image, square_resize
from hypersiren.core.pixels import to_model_space


def read_photo(path: str | Path, size: int) -> Tensor:
    """An image file as the model takes it: ``(1, 3, size, size)`` in [-1, 1].

    Any format PIL reads (``data.decode_image``), centre-cropped to a square and resized
    with antialiasing (``data.square_resize``): the same steps as every dataset image.
    """
    return to_model_space(square_resize(decode_image(path), size))[None]


def observed_at(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """The observed pixels ``mask (B, 1, h, w)`` (the model's size) at another size: ``(B, 1, *size)`` bool.

    An output pixel counts as observed when the model pixel it lies in was (nearest neighbour).
    """
    return F.interpolate(mask.float(), size=size, mode="nearest-exact").bool()


def keep_observed(completion: Tensor, photo: Tensor, mask: Tensor) -> Tensor:
    """``completion (B, C, H', W')`` with the observed pixels taken from ``photo (B, C, H', W')``, both in the
    same range, the photo at the completion's size (``read_photo(path, size=H')``).

    ``mask (B, 1, h, w)`` is the observed pixels at the model's size (``observed_at`` maps it to H' x W'):
    at ``H' = h`` this is ``HyperSiren.inpaint``'s own paste, and above it each observed pixel's area
    shows the photo's own detail rather than the model's rendering of it.
    """
    if photo.shape != completion.shape:
        raise ValueError(f"photo {tuple(photo.shape)} must have the completion's shape {tuple(completion.shape)}")
    return torch.where(observed_at(mask, completion.shape[-2:]), photo, completion)

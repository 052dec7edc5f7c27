"""A user's own photos: read as the model takes them, and completed at any size with the user's pixels kept.

The model sees a photo at its own size (``data.image_size``, e.g. 32x32), but a user asks for a
completion at any size. Where a pixel was observed, the user already has it, at every resolution:
``keep_observed`` puts the photo itself there, at the output's resolution, so that "observed pixels
kept" holds at every size, not only at the model's.
"""

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.core.pixels import to_model_space


def read_photo(path: str | Path, size: int) -> Tensor:
    """An image file as the model takes it: ``(1, 3, size, size)`` in [-1, 1].

    Any format PIL reads (``images.decode_image``), centre-cropped to a square and resized
    with antialiasing (``images.square_resize``): the same steps as every dataset image.
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


class PhotoCompletion(NamedTuple):
    """One photo completed at the output size ``N``, each ``(1, C, N, N)`` in [-1, 1] but ``observed``."""

    original: Tensor  # the photo at N x N: what the completions keep where observed
    observed: Tensor  # (1, 1, N, N) bool: the observed pixels at N x N (observed_at)
    hypersiren: Tensor  # the model's rendering at N x N, your pixels kept
    biharmonic: Tensor  # scikit-image's fill at the model's size, bicubic to N x N, your pixels kept
    gaussian: Tensor | None  # the run's Gaussian prior, made like the biharmonic; None for a run without one


@torch.no_grad()
def complete_photo(model: HyperSiren, photo: Tensor, mask: Tensor, side: int) -> PhotoCompletion:
    """Complete ``photo`` (uint8 ``(C, H, W)``, any size) from the observed pixels ``mask (1, 1, S, S)`` at the
    model's size ``S``, at ``side x side``, beside the classical fill: what eval/inpaint.py and eval/demo.py show.

    Every completion is made the same way at the output size, so that they compare: each method fills the
    model's S x S input, the classical one (and the run's Gaussian prior, where it has one) is enlarged by bicubic
    resampling (as a user would enlarge it; the model renders at any size itself), and all keep your photo's own
    pixels where observed (``keep_observed``).
    """
    size, device = mask.shape[-1], mask.device
    image = to_model_space(square_resize(photo, size))[None].to(device)
    original = to_model_space(square_resize(photo, side))[None].to(device)
    rendered = model.inpaint(image, mask, size=(side, side))

    def enlarged(filled: Tensor) -> Tensor:
        bicubic = F.interpolate(filled, size=(side, side), mode="bicubic")
        return keep_observed(bicubic.clamp(-1.0, 1.0), original, mask)

    return PhotoCompletion(
        original=original,
        observed=observed_at(mask, (side, side)),
        hypersiren=keep_observed(rendered, original, mask),
        biharmonic=enlarged(classical_fill("biharmonic", image, mask)),
        gaussian=None if model.prior is None else enlarged(model.prior(image, mask)),
    )

"""A user's own photos, completed at the size the user has them, from every pixel the user observed.

The model's encoder reads a fixed grid (``data.image_size``, e.g. 64x64) and its SIREN renders any size. A
photo's observed pixels come at the photo's own size N, often many per model cell: ``model_view`` gives the
model each observed cell as the mean of the observed pixels in it (none thrown away), the model renders at
N x N, and ``correct_at_size`` adds what the rendering misses at the observed pixels, spread to the missing ones
by the same biharmonic fill a user would run on the photo itself (scikit-image): the model supplies the face,
the user's own pixels its detail. Observed pixels are the user's, exactly, at every size.
"""

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range

Prior = Callable[[Tensor, Tensor], Tensor]  # (image, mask) at the model's size -> a completion, observed kept


def read_photo(path: str | Path, size: int) -> Tensor:
    """An image file as the model takes it: ``(1, 3, size, size)`` in [-1, 1].

    Any format PIL reads (``images.decode_image``), centre-cropped to a square and resized
    with antialiasing (``images.square_resize``): the same steps as every dataset image.
    """
    return to_model_space(square_resize(decode_image(path), size))[None]


def model_view(photo: Tensor, mask: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """What the model reads of ``photo (B, C, N, N)`` observed at ``mask (B, 1, N, N)``: ``(B, C, size, size)`` and
    its bool mask, a model cell observed where any of its pixels is, valued at the mean of those observed.

    At ``N = size`` this is the photo and mask themselves; above it no observed pixel is dropped (a cell's value is
    the mean of the scene over its observed part, as a dataset image's pixel is the mean over its area).
    """
    share = F.adaptive_avg_pool2d(mask.float(), size)  # (B, 1, size, size): the observed share of each cell
    total = F.adaptive_avg_pool2d(torch.where(mask, photo, 0.0), size)
    observed = share > 0
    return torch.where(observed, total / share.clamp_min(1e-12), 0.0).clamp(-1.0, 1.0), observed


def correct_at_size(rendered: Tensor, photo: Tensor, mask: Tensor) -> Tensor:
    """``rendered (B, C, N, N)`` (a completion at the photo's size) corrected by the observed pixels of ``photo``:
    its error at ``mask (B, 1, N, N)`` filled in biharmonically and added, so observed pixels are the photo's and
    the missing ones move by the error of their observed neighbours. In [-1, 1]."""
    if rendered.shape != photo.shape or mask.shape[-2:] != photo.shape[-2:]:
        raise ValueError(
            f"rendered {tuple(rendered.shape)}, photo {tuple(photo.shape)} and mask {tuple(mask.shape)} must be "
            "of one size"
        )
    error = classical_fill("biharmonic", torch.where(mask, photo - rendered, 0.0), mask)
    return torch.where(mask, photo, (rendered + error).clamp(-1.0, 1.0))


class PhotoCompletion(NamedTuple):
    """One photo completed at its output size ``N``, each ``(1, C, N, N)`` in [-1, 1] but ``observed``."""

    original: Tensor  # the photo at N x N: what the completions keep where observed
    observed: Tensor  # (1, 1, N, N) bool: the observed pixels
    rendered: Tensor  # the model's own rendering at N x N, before the correction
    hypersiren: Tensor  # the rendering corrected by your pixels (correct_at_size): what a user gets
    biharmonic: Tensor  # scikit-image's biharmonic fill of the photo at N x N
    gaussian: Tensor | None  # the run's Gaussian prior (at the model's size), bicubic and corrected the same way
    model_side: int  # the side the model read the photo at


@torch.no_grad()
def complete_photo(model: HyperSiren, photo: Tensor, mask: Tensor, model_side: int) -> PhotoCompletion:
    """Complete ``photo`` (uint8 ``(C, H, W)``, any size) at the size of ``mask (1, 1, N, N)``, its observed pixels
    (of the centre square resized to N x N), beside scikit-image's biharmonic fill of the same pixels at the same
    size: what eval/inpaint.py and eval/demo.py show. ``model_side``: the run's ``data.image_size``."""
    side = mask.shape[-1]
    if side > MAX_PHOTO_SIDE:
        raise ValueError(f"photos are completed at {MAX_PHOTO_SIDE}x{MAX_PHOTO_SIDE} at most, got {side}x{side}")
    original = to_model_space(square_resize(photo, side))[None].to(mask.device)
    return complete_at_size(model, original, mask, model_side)


@torch.no_grad()
def complete_at_size(
    model: HyperSiren, original: Tensor, mask: Tensor, model_side: int, prior: Prior | None = None
) -> PhotoCompletion:
    """``complete_photo`` of ``original (B, C, N, N)`` in [-1, 1], already at its output size (batched: the
    evaluation's path, ``eval/own_size.py``). ``prior`` completes the model's view for the ``gaussian`` row (default:
    the run's own prior, where it has one)."""
    side = mask.shape[-1]
    prior = prior or model.prior
    image, seen = model_view(original, mask, model_side)
    rendered = model.inpaint(image, seen, size=(side, side), raw=True).clamp(-1.0, 1.0)

    def corrected(completion: Tensor) -> Tensor:  # at the model's own size it read every pixel exactly: kept only
        if side > model_side:
            return correct_at_size(completion, original, mask)
        return torch.where(mask, original, completion)

    gaussian = None
    if prior is not None:
        guess = prior(image, seen)
        if side != model_side:
            guess = F.interpolate(guess, size=(side, side), mode="bicubic", align_corners=False).clamp(-1.0, 1.0)
        gaussian = corrected(guess)
    return PhotoCompletion(
        original=original,
        observed=mask,
        rendered=rendered,
        hypersiren=corrected(rendered),
        biharmonic=classical_fill("biharmonic", original, mask),
        gaussian=gaussian,
        model_side=model_side,
    )


def scores(completion: PhotoCompletion) -> dict[str, float]:
    """PSNR (dB, on [0, 1]) of each completion of one photo against the photo at the output size, over all its
    pixels: a true score where the photo's square is at least that large (below, the truth is an upsampling)."""
    named = {"HyperSiren": completion.hypersiren, "biharmonic": completion.biharmonic}
    named |= {} if completion.gaussian is None else {"Gaussian prior": completion.gaussian}
    truth = to_unit_range(completion.original)
    return {name: float(psnr(to_unit_range(filled), truth)[0]) for name, filled in named.items()}


def scores_line(completion: PhotoCompletion) -> str:
    """``scores`` as the programs print them."""
    return "PSNR against your photo: " + ", ".join(f"{name} {db:.2f} dB" for name, db in scores(completion).items())

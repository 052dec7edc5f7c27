"""A user's own photos, completed at the size the user has them, from every pixel the user observed.

The model's encoder reads a fixed grid (``data.image_size``, e.g. 64x64) and its SIREN renders any size. A
photo's observed pixels come at the photo's own size N, often many per model cell: ``model_view`` gives the
model each observed cell as the mean of the observed pixels in it (none thrown away), the model renders at
N x N, and ``correct_at_size`` adds what the rendering misses at the observed pixels, spread to the missing ones
by the same biharmonic fill a user would run on the photo itself (scikit-image): the model supplies the face,
the user's own pixels its detail. Where the observed pixels are dense against the model's cells the model's detail
between them is worth less than their own: ``DetailWeights``, chosen on training images (eval/fit_detail.py), say
how much of it to keep at each density. Observed pixels are the user's, exactly, at every size.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.checkpoint import DETAIL_FILE
from hypersiren.across.evaluation import mean_psnrs
from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import ConfigError
from hypersiren.results import write_json

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


class DetailWeights(NamedTuple):
    """How much of the model's own detail to keep above its size, by the density of the observed pixels: at
    ``densities[i]`` observed pixels per model cell, the completion is ``weights[i]`` of the corrected rendering and the
    rest biharmonic of the photo (the same pixels, the same fill), linear in log density between and held beyond.
    A weight of 1 is ``correct_at_size`` alone, 0 biharmonic alone."""

    densities: tuple[float, ...]  # observed pixels per model cell, ascending
    weights: tuple[float, ...]  # in [0, 1]

    def __call__(self, density: Tensor) -> Tensor:
        """The weight at each of ``density (B,)``."""
        least = self.densities[0]  # held below it: no log of 0 for a mask with nothing observed
        keep = np.interp(np.log(density.double().clamp_min(least).cpu().numpy()), np.log(self.densities), self.weights)
        return torch.as_tensor(keep, dtype=torch.float32, device=density.device)

    def save(self, run_dir: str | Path) -> None:
        write_json({"densities": list(self.densities), "weights": list(self.weights)}, Path(run_dir) / DETAIL_FILE)

    @classmethod
    def of_run(cls, run_dir: str | Path) -> "DetailWeights | None":
        """The run's weights (eval/fit_detail.py), None where it has none; one-line ``ConfigError`` for a bad file."""
        path = Path(run_dir) / DETAIL_FILE
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            detail = cls(tuple(map(float, saved["densities"])), tuple(map(float, saved["weights"])))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{path} is not detail weights ({error}): run eval/fit_detail.py to rewrite it") from None
        ordered = all(a < b for a, b in zip(detail.densities, detail.densities[1:]))
        valid = detail.densities and len(detail.weights) == len(detail.densities) and detail.densities[0] > 0
        if not (valid and ordered and all(0 <= w <= 1 for w in detail.weights)):
            raise ConfigError(
                f"{path}: densities must be positive and ascending, one weight in [0, 1] each: run eval/fit_detail.py"
            )
        return detail


def observed_per_cell(mask: Tensor, model_side: int) -> Tensor:
    """Observed pixels per model cell of each of ``mask (B, 1, N, N)``: ``(B,)``, what ``DetailWeights`` are of."""
    return mask.flatten(1).float().mean(1) * (mask.shape[-1] / model_side) ** 2


class PhotoCompletion(NamedTuple):
    """One photo completed at its output size ``N``, each ``(1, C, N, N)`` in [-1, 1] but ``observed``."""

    original: Tensor  # the photo at N x N: what the completions keep where observed
    observed: Tensor  # (1, 1, N, N) bool: the observed pixels
    rendered: Tensor  # the model's own rendering at N x N, before the correction
    hypersiren: Tensor  # the rendering corrected by your pixels, its detail weighted by their density: what a user gets
    corrected: Tensor  # the rendering corrected by your pixels (correct_at_size), all its detail kept
    biharmonic: Tensor  # scikit-image's biharmonic fill of the photo at N x N
    gaussian: Tensor | None  # the run's Gaussian prior (at the model's size), bicubic and corrected the same way
    model_side: int  # the side the model read the photo at


@torch.no_grad()
def complete_photo(
    model: HyperSiren, photo: Tensor, mask: Tensor, model_side: int, detail: DetailWeights | None = None
) -> PhotoCompletion:
    """Complete ``photo`` (uint8 ``(C, H, W)``, any size) at the size of ``mask (1, 1, N, N)``, its observed pixels
    (of the centre square resized to N x N), beside scikit-image's biharmonic fill of the same pixels at the same
    size: what eval/inpaint.py and eval/demo.py show. ``model_side``: the run's ``data.image_size``; ``detail``: the
    run's ``DetailWeights`` (None: all of the model's detail kept)."""
    side = mask.shape[-1]
    if side > MAX_PHOTO_SIDE:
        raise ValueError(f"photos are completed at {MAX_PHOTO_SIDE}x{MAX_PHOTO_SIDE} at most, got {side}x{side}")
    original = to_model_space(square_resize(photo, side))[None].to(mask.device)
    return complete_at_size(model, original, mask, model_side, detail=detail)


@torch.no_grad()
def complete_at_size(
    model: HyperSiren,
    original: Tensor,
    mask: Tensor,
    model_side: int,
    prior: Prior | None = None,
    detail: DetailWeights | None = None,
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
    biharmonic = classical_fill("biharmonic", original, mask)
    hypersiren = corrected(rendered)
    blended = hypersiren
    if detail is not None and side > model_side:
        keep = detail(observed_per_cell(mask, model_side))[:, None, None, None]  # (B, 1, 1, 1)
        blended = keep * hypersiren + (1 - keep) * biharmonic  # both are the photo where observed
    return PhotoCompletion(
        original=original,
        observed=mask,
        rendered=rendered,
        hypersiren=blended,
        corrected=hypersiren,
        biharmonic=biharmonic,
        gaussian=gaussian,
        model_side=model_side,
    )


WEIGHT_GRID = tuple(step / 10 for step in range(11))


def fit_detail_weights(
    model: HyperSiren, images: dict[int, Tensor], shares: tuple[float, ...], model_side: int, seed: int = 0
) -> tuple[DetailWeights, list[dict[str, float]]]:
    """The ``DetailWeights`` that score best on training ``images`` (``{N: (B, C, N, N) uint8}``, sides above
    ``model_side``) observed at each of ``shares`` of their pixels (seeded masks): at each density the weight of
    ``WEIGHT_GRID`` with the highest mean PSNR. Also returns what was measured at each density (mean dB with the
    chosen weight, with all of the model's detail, with none of it)."""

    def predict(image: Tensor, mask: Tensor, rows: slice, setting: str) -> dict[float, tuple[Tensor, Tensor]]:
        completion = complete_at_size(model, image, mask, model_side)
        blends = {w: w * completion.corrected + (1 - w) * completion.biharmonic for w in WEIGHT_GRID}
        return {w: (blend, image) for w, blend in blends.items()}

    measured = []
    device = next(model.parameters()).device
    for side, signals in images.items():
        if side <= model_side:
            raise ValueError(f"detail weights are of sides above the model's {model_side}, got {side}")
        settings = tuple(str(round(share * side * side)) for share in shares)
        desc = f"{side}x{side}"
        scored = mean_psnrs(signals, settings, predict, device, seed, batch_size=8, progress=True, desc=desc)
        for setting, rows in scored.items():
            psnrs = {w: row["psnr"] for w, row in rows.items()}
            best = max(psnrs, key=psnrs.get)
            density = int(setting) / model_side**2
            measured.append(
                {"side": side, "observed": int(setting), "density": density, "weight": best}
                | {"psnr": psnrs[best], "psnr_all_detail": psnrs[1.0], "psnr_biharmonic": psnrs[0.0]}
            )
    measured.sort(key=lambda row: row["density"])
    by_density: dict[float, list[float]] = {}
    for row in measured:  # one weight per density: the mean where two sizes share one
        by_density.setdefault(round(row["density"], 6), []).append(row["weight"])
    weights = tuple(sum(ws) / len(ws) for ws in by_density.values())
    return DetailWeights(tuple(by_density), weights), measured


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

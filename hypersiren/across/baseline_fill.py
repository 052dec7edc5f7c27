"""Classical inpainting, no learning: what a user would run instead, and so the bar a trained model must clear.

Each fill takes a signal ``(B, C, *S)`` in [-1, 1] and a bool mask ``(B, 1, *S)`` and returns
``(B, C, *S)`` with the observed points kept. The interpolators are scipy's and scikit-image's own: the
comparison is with what users would call, in the signal's dimension (``CLASSICAL_FILLS[dims]``):

- series: nearest, linear (``np.interp``), periodic linear (``np.interp`` with the series' period: outlines are
  closed curves) and a cubic spline (scipy ``CubicSpline``, natural ends);
- images: nearest and linear (scipy ``griddata``) and biharmonic (scikit-image ``inpaint_biharmonic``);
- volumes: nearest and linear (``griddata``) and a thin-plate RBF (scipy ``RBFInterpolator``).

Beyond the observed points' hull (the second half of a "first half" signal), linear and spline fills hold the
nearest observed value, as a user would clip them: an extrapolated cubic diverges.
"""

from collections.abc import Callable

import numpy as np
import torch
from scipy.interpolate import CubicSpline, RBFInterpolator, griddata
from scipy.spatial import QhullError
from skimage.restoration import inpaint_biharmonic
from torch import Tensor

from hypersiren.core.checks import require_tensor

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (*S, C) values, (*S,) bool observed -> (*S, C) filled


def mean_image_fill(mean_image: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Missing points from the mean training signal ``(C, *S)``, observed ones kept."""
    return torch.where(mask, image, mean_image.expand_as(image))


def _scattered_fill(method: str) -> Fill:
    """scipy ``griddata`` over grid positions; points outside the observed hull take the nearest observed one."""

    def fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        observed, missing = np.argwhere(mask), np.argwhere(~mask)
        values = image[mask]  # (k, C)
        filled = image.copy()
        estimate = griddata(observed, values, missing, method="nearest")
        if method == "linear" and len(observed) > mask.ndim:
            try:
                linear = griddata(observed, values, missing, method="linear")  # NaN outside the convex hull
                estimate = np.where(np.isnan(linear), estimate, linear)
            except QhullError:  # all observed points on one line (plane): no simplex to interpolate in
                pass
        filled[~mask] = estimate
        return filled

    return fill


def _series_fill(method: str) -> Fill:
    """A series ``(T, C)`` from its observed samples: nearest, linear or a natural cubic spline."""

    def fill(series: np.ndarray, mask: np.ndarray) -> np.ndarray:
        times = np.flatnonzero(mask)
        everywhere = np.arange(len(mask))
        values = series[times]  # (k, C)
        if method == "nearest" or len(times) < 2:
            nearest = np.abs(everywhere[:, None] - times[None, :]).argmin(axis=1)  # ties: the earlier sample
            return values[nearest]
        if method == "periodic":  # a closed curve (an outline): the last sample's neighbour is the first
            return np.stack([np.interp(everywhere, times, channel, period=len(mask)) for channel in values.T], axis=1)
        inside = np.clip(everywhere, times[0], times[-1])  # beyond the hull: the end value held
        if method == "linear" or len(times) < 3:
            return np.stack([np.interp(inside, times, channel) for channel in values.T], axis=1)
        return CubicSpline(times, values, bc_type="natural")(inside)

    return fill


def _biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return inpaint_biharmonic(image, ~mask, channel_axis=-1)


def _thin_plate(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A thin-plate-spline RBF through the observed voxels (the 64 nearest of each, so it scales)."""
    observed, missing = np.argwhere(mask), np.argwhere(~mask)
    if len(observed) <= mask.ndim:  # too few points for the spline's linear term
        return _scattered_fill("nearest")(volume, mask)
    filled = volume.copy()
    neighbours = min(64, len(observed))
    filled[~mask] = RBFInterpolator(observed, volume[mask], neighbors=neighbours, kernel="thin_plate_spline")(missing)
    return filled


CLASSICAL_FILLS: dict[int, dict[str, Fill]] = {
    1: {
        "nearest": _series_fill("nearest"),
        "linear": _series_fill("linear"),
        "periodic": _series_fill("periodic"),
        "cubic": _series_fill("cubic"),
    },
    2: {"nearest": _scattered_fill("nearest"), "linear": _scattered_fill("linear"), "biharmonic": _biharmonic},
    3: {"nearest": _scattered_fill("nearest"), "linear": _scattered_fill("linear"), "rbf": _thin_plate},
}


def classical_fill(method: str, image: Tensor, mask: Tensor) -> Tensor:
    """One of ``CLASSICAL_FILLS`` of the signal's dimension, signal by signal (scipy and scikit-image work on one
    signal at a time)."""
    require_tensor(image, "image")
    fills = CLASSICAL_FILLS.get(image.dim() - 2, {})
    if method not in fills:
        raise ValueError(
            f"unknown classical fill {method!r} for {image.dim() - 2}-D signals: choose one of {sorted(fills)}"
        )
    if require_tensor(mask, "mask").dtype != torch.bool:
        raise TypeError(f"mask must be bool (True: observed), got {mask.dtype}: pass mask > 0")
    points = torch.where(mask, image, 0.0).detach().movedim(1, -1).cpu().double().numpy()  # (B, *S, C)
    observed = mask.detach()[:, 0].cpu().numpy()
    filled = np.stack([fills[method](one, seen) if not seen.all() else one for one, seen in zip(points, observed)])
    return torch.from_numpy(filled).movedim(-1, 1).to(image.device, image.dtype)

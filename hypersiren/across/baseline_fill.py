"""Classical inpainting, no learning: what a user would run instead, and so the bar a trained model must clear.

Each fill takes ``image (B, C, H, W)`` in [-1, 1] and a bool ``mask (B, 1, H, W)`` and
returns ``(B, C, H, W)`` with the observed pixels kept. The interpolators are
scipy's and scikit-image's own: the comparison is with what users would call.
"""

from collections.abc import Callable

import numpy as np
import torch
from scipy.interpolate import griddata
from scipy.spatial import QhullError
from skimage.restoration import inpaint_biharmonic
from torch import Tensor

from hypersiren.core.checks import require_tensor


def mean_image_fill(mean_image: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Missing pixels from the mean training image ``(C, H, W)``, observed ones kept."""
    return torch.where(mask, image, mean_image.expand_as(image))


def _scattered_fill(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """scipy ``griddata`` over pixel positions; points outside the observed hull take the nearest pixel."""

    def fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:  # (H, W, C), (H, W) bool
        observed, missing = np.argwhere(mask), np.argwhere(~mask)
        values = image[mask]  # (k, C)
        filled = image.copy()
        estimate = griddata(observed, values, missing, method="nearest")
        if method == "linear" and len(observed) >= 3:
            try:
                linear = griddata(observed, values, missing, method="linear")  # NaN outside the convex hull
                estimate = np.where(np.isnan(linear), estimate, linear)
            except QhullError:  # all observed pixels on one line: no triangle to interpolate in
                pass
        filled[~mask] = estimate
        return filled

    return fill


def _biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return inpaint_biharmonic(image, ~mask, channel_axis=-1)


CLASSICAL_FILLS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "nearest": _scattered_fill("nearest"),
    "linear": _scattered_fill("linear"),
    "biharmonic": _biharmonic,
}


def classical_fill(method: str, image: Tensor, mask: Tensor) -> Tensor:
    """One of ``CLASSICAL_FILLS`` image by image (scipy and scikit-image work on one image at a time)."""
    if method not in CLASSICAL_FILLS:
        raise ValueError(f"unknown classical fill {method!r}: choose one of {sorted(CLASSICAL_FILLS)}")
    require_tensor(image, "image")
    if require_tensor(mask, "mask").dtype != torch.bool:
        raise TypeError(f"mask must be bool (True: observed), got {mask.dtype}: pass mask > 0")
    pixels = torch.where(mask, image, 0.0).detach().permute(0, 2, 3, 1).cpu().double().numpy()  # (B, H, W, C)
    observed = mask.detach()[:, 0].cpu().numpy()
    filled = np.stack(
        [CLASSICAL_FILLS[method](one, seen) if not seen.all() else one for one, seen in zip(pixels, observed)]
    )
    return torch.from_numpy(filled).permute(0, 3, 1, 2).to(image.device, image.dtype)

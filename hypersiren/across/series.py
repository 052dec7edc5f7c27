"""Time series as signals: the UCR archive's univariate series, ``(N, 1, T)`` float in [-1, 1].

The series adapter of the across pipeline, as ``data.load_images`` is the images': a series is a
signal on a 1-D grid, so the same encoders, decoders, masks, training and evaluation apply. The
archive's series come from aeon, which ships several of them (OSULeaf, GunPoint, ArrowHead, …) inside
the package, so they load offline; a folder holding ``<Name>_TRAIN.ts`` and ``<Name>_TEST.ts`` (the
archive's own files, for the other datasets) loads the same way.

Every series is resampled to ``data.image_size`` samples (antialiased, from the original samples, as
images are resized), then mapped to [-1, 1] by one affine map per dataset: the training split's range
and a 5% margin each side (the archive's series are z-normalized each, so a held-out series can reach a
little beyond the training range; what still falls outside is clipped, and counted).
"""

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from hypersiren.errors import DatasetError

MARGIN = 0.05  # of the training range, each side
UCR_SPLITS = {"train": "TRAIN", "test": "TEST"}


def load_series(name_or_folder: str, split: str, length: int, limit: int | None = None) -> Tensor:
    """One split of a UCR dataset as ``(N, 1, length)`` float32 in [-1, 1], in the archive's order."""
    originals = ucr_split(name_or_folder, split)[:limit]
    low, high = _training_range(name_or_folder)
    margin = MARGIN * (high - low)
    scaled = (originals - (low - margin)) / (high - low + 2 * margin) * 2 - 1
    outside = int((scaled.abs() > 1).sum())
    if outside:
        warnings.warn(
            f"{outside} samples of {name_or_folder} {split} lie beyond the training range: clipped to it", stacklevel=2
        )
    return resample(scaled, length).clamp(-1, 1)  # clamped after resampling, whose antialiasing can overshoot


def resample(series: Tensor, length: int) -> Tensor:
    """``(N, C, T)`` -> ``(N, C, length)``: linear, antialiased when shortening (torchvision's resize of a one-row
    image, the images' own resampling)."""
    if series.shape[-1] == length:
        return series
    return TF.resize(series.unsqueeze(-2), [1, length], antialias=True).squeeze(-2)


def ucr_split(name_or_folder: str, split: str) -> Tensor:
    """The archive's series of ``split`` ("train" or "test") as float32 ``(N, 1, T)``, unscaled."""
    if split not in UCR_SPLITS:
        raise DatasetError(f"the UCR archive has splits {', '.join(UCR_SPLITS)}, not {split!r}: set data.eval_split")
    try:
        from aeon.datasets import load_classification, load_from_ts_file
    except ImportError as error:
        raise DatasetError(f"reading the UCR archive needs aeon ({error}): pip install -e '.[series]'") from None
    folder = Path(name_or_folder).expanduser()
    try:
        if folder.is_dir():
            series, _ = load_from_ts_file(str(folder / f"{folder.name}_{UCR_SPLITS[split]}.ts"))
        else:  # a name typed on the command line arrives as a path from the working directory
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                series, _ = load_classification(folder.name, split=split)
    except Exception as error:  # aeon raises several types for unknown names, no network and malformed files
        raise DatasetError(
            f"UCR dataset {name_or_folder!r} could not be read ({type(error).__name__}: {error}): name one aeon "
            "ships (e.g. OSULeaf, GunPoint, ArrowHead) or a folder with <Name>_TRAIN.ts and <Name>_TEST.ts"
        ) from None
    if not isinstance(series, np.ndarray) or series.ndim != 3 or series.shape[1] != 1:
        raise DatasetError(f"UCR dataset {name_or_folder!r} is not univariate series of one length: use another")
    if not np.isfinite(series).all():
        raise DatasetError(f"UCR dataset {name_or_folder!r} {split} holds missing values: use another")
    return torch.from_numpy(series).float()


def _training_range(name_or_folder: str) -> tuple[float, float]:
    """The lowest and highest sample of the training split; ``DatasetError`` if they are equal, since the map to
    [-1, 1] divides by their difference (every series would be NaN, and training would blame its learning rate)."""
    train = ucr_split(name_or_folder, "train")
    low, high = float(train.min()), float(train.max())
    if low == high:
        raise DatasetError(
            f"UCR dataset {name_or_folder!r} train: every sample of every series is {low:g}, and a constant cannot be "
            "scaled to [-1, 1]: use a dataset whose training series vary"
        )
    return low, high

"""Datasets as signals, and the batches drawn from them: the generic half of the data pipeline.

A split is a tensor of signals ``(N, C, *S)``: uint8 images from the images adapter (``images``), float
series in [-1, 1] from the series adapter (``series``); ``load_images`` picks the adapter of
``data.dataset``. Batches (``training_batch``) are drawn from any of them the same way, on the tensors'
device, as a pure function of (seed, step).
"""

import math
from pathlib import Path
from typing import NamedTuple

import torch
from einops import rearrange
from torch import Tensor

from hypersiren.across.config import DataConfig, TrainConfig
from hypersiren.across.context import training_context_mask
from hypersiren.across.images import load_image_split
from hypersiren.across.series import load_series
from hypersiren.core.checks import require_count
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.pixels import to_model_space

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_images(config: DataConfig, split: str, limit: int | None = None) -> Tensor:
    """One split of ``config``'s dataset as signals, through its adapter; ``limit`` keeps the first N (in file order).

    Images (``images.load_image_split``): uint8 ``(N, 3, S, S)``, decoded once and cached. Series
    (``dataset="ucr"``, ``series.load_series``): float ``(N, 1, S)`` in [-1, 1], ``root`` the UCR dataset's name
    (or folder). Every program that loads a split so trains and scores any signal family.
    """
    if limit is not None:
        require_count(limit, "limit", low=1)  # a slice would take -1 as all but the last image, and 3.5 not at all
    if config.dataset == "ucr":
        return load_series(config.root, split, config.image_size, limit)
    cache = _from_repository(config.cache) if config.cache else None
    return load_image_split(
        config.dataset, dataset_root(config), split, config.image_size, limit, cache=cache, download=config.download
    )


def dataset_root(config: DataConfig) -> Path:
    """``config.root`` as a folder; a relative root is taken from the repository root, not the working directory.

    Presets and saved runs name roots as seen from the repository (``../shared/data/celeba``),
    and programs must find them from any folder. Roots typed on the command line are made
    absolute from the working directory when parsed (``config.command_line_root``), as a shell user means them.
    """
    return _from_repository(config.root)


def _from_repository(path: str) -> Path:
    """``path`` with ``~`` expanded; relative to the repository root when relative."""
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else (REPO_ROOT / expanded).resolve()


class ShuffledBatches:
    """Batch indices for step ``s`` as a pure function of (seed, s): a resumed run sees the same batches.

    Each epoch is a fresh permutation seeded by (seed, epoch); the last partial batch is dropped.
    Permutations are drawn on ``device`` (the images'), so indexing never copies from the host.
    """

    def __init__(self, num_images: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if batch_size > num_images:
            raise ValueError(f"batch size {batch_size} exceeds the {num_images} training images")
        self.num_images, self.batch_size, self.seed = num_images, batch_size, seed
        self.device = torch.device(device)
        self.batches_per_epoch = num_images // batch_size
        self._epoch, self._permutation = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> Tensor:
        epoch, offset = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = self.generator(self.seed * 100_003 + epoch)
            permutation = torch.randperm(self.num_images, generator=generator, device=self.device)
            self._epoch, self._permutation = epoch, permutation
        return self._permutation[offset * self.batch_size : (offset + 1) * self.batch_size]

    def generator(self, seed: int) -> torch.Generator:
        """A generator on ``device`` seeded by ``seed``: on CUDA, seeding it is host bookkeeping, not a sync."""
        return torch.Generator(device=self.device).manual_seed(seed)


class Batch(NamedTuple):
    """One training step's share of images and the points its loss is taken at."""

    image: Tensor  # (B, C, *S) in [-1, 1]: images (B, C, S, S), series (B, C, S)
    mask: Tensor  # (B, 1, *S) bool: the context the encoder sees
    coords: Tensor  # (B, N, D): the query points rendered
    target: Tensor  # (B, N, C) in [-1, 1]: their true values
    observed: Tensor  # (B, N) bool: which query points are context pixels


def training_batch(
    images: Tensor,
    batches: ShuffledBatches,
    step: int,
    min_context: int,
    max_context: int,
    log_uniform: bool = False,
    top_half_fraction: float = 0.0,
    query_points: int = 0,
    fine_images: Tensor | None = None,
    fine_points: int = 0,
    hflip: bool = False,
    shard: slice = slice(None),
) -> Batch:
    """Training step ``step``'s batch, a pure function of (seed, step): a resumed run replays it exactly.

    ``images`` is a split from ``load_images`` (uint8 images or float signals) on ``batches.device``, where
    every draw is made: the batch is assembled without a copy from the host or a wait on the device. The query
    points are every pixel, or ``query_points`` of them per image (``query_pixels``), plus ``fine_points`` points of
    ``fine_images`` (the same split at twice the size, ``fine_grid_points``); ``hflip`` mirrors half the
    images (and their fine versions) left-right. Everything is drawn
    for the whole batch, then ``shard`` (this process's share under DDP) is kept, so that the draws
    do not depend on the number of processes.
    """
    grid = images.shape[2:]
    masks = training_context_mask(
        batches.batch_size,
        grid,
        min_context,
        max_context,
        log_uniform,
        top_half_fraction,
        generator=batches.generator(batches.seed * 1_000_003 + step),
    )
    image = model_space(images[batches.indices(step)])
    if hflip:
        mirrored = _mirrored_rows(batches, step, dims=len(grid))  # the same rows of the fine images below
        image = torch.where(mirrored, image.flip(-1), image)
    coords = cell_centres(grid, images.device).expand(batches.batch_size, -1, -1)
    target, observed = rearrange(image, "b c ... -> b (...) c"), masks.flatten(1)
    if query_points:
        index = query_pixels(observed, query_points, batches.generator(batches.seed * 104_729 + step))  # (B, K)
        coords, target = (_take(t, index) for t in (coords, target))
        observed = observed.gather(1, index)
    if fine_points:
        fine = model_space(fine_images[batches.indices(step)])
        if hflip:
            fine = torch.where(mirrored, fine.flip(-1), fine)
        fine_coords, fine_target = fine_grid_points(
            fine, num_points=fine_points, generator=batches.generator(batches.seed * 7_919 + step)
        )
        coords, target = torch.cat([coords, fine_coords], dim=1), torch.cat([target, fine_target], dim=1)
        observed = torch.cat([observed, torch.zeros_like(fine_target[..., 0], dtype=torch.bool)], dim=1)
    return Batch(*(t[shard] for t in (image, masks, coords, target, observed)))


def recipe_batch(
    train: TrainConfig,
    images: Tensor,
    batches: ShuffledBatches,
    step: int,
    fine_images: Tensor | None = None,
    shard: slice = slice(None),
) -> Batch:
    """``training_batch`` with ``train``'s recipe: its context range, top halves, query and fine points."""
    return training_batch(
        images=images,
        batches=batches,
        step=step,
        min_context=train.min_context,
        max_context=train.max_context,
        log_uniform=train.log_uniform_context,
        top_half_fraction=train.top_half_fraction,
        query_points=train.query_points,
        fine_images=fine_images,
        fine_points=train.fine_points,
        hflip=train.hflip,
        shard=shard,
    )


def _mirrored_rows(batches: ShuffledBatches, step: int, dims: int) -> Tensor:
    """``(B, 1, …)`` bool: which signals of step ``step`` are mirrored along the last axis (half of them, drawn from
    (seed, step) on the device). A mirrored face is another plausible face: on 4,560 faces seen hundreds of times
    each (the GPU presets), it doubles the faces there are to learn from."""
    generator = batches.generator(batches.seed * 31_337 + step)
    mirrored = torch.rand(batches.batch_size, generator=generator, device=batches.device) < 0.5
    return mirrored.view(-1, *[1] * (dims + 1))


def model_space(signals: Tensor) -> Tensor:
    """A split's signals in model space: uint8 images mapped to [-1, 1]; float signals are stored there already."""
    return to_model_space(signals) if signals.dtype == torch.uint8 else signals.float()


def query_pixels(observed: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """Indices ``(B, count)`` of the pixels to render: the missing ones first, in random order, then observed ones.

    ``observed (B, P)`` bool. The held-out metric is the missing pixels' error, so they are the
    points worth rendering: with 98% observed every missing pixel is kept, where a uniform subset
    would keep one in four. Within each group the choice is uniform, so each loss term is the mean
    over a uniform sample of its pixels; ``count = P`` keeps every pixel.
    """
    scores = torch.rand(observed.shape, generator=generator, device=observed.device) + observed  # missing < 1 <= obs.
    return scores.topk(count, dim=1, largest=False, sorted=False).indices


def _take(points: Tensor, index: Tensor) -> Tensor:
    """``points (B, P, D)`` at ``index (B, K)`` -> ``(B, K, D)``."""
    return points.gather(1, index.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


def fine_grid_points(
    fine_images: Tensor, num_points: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random pixel centres of a finer grid: supervision *between* the input's pixel centres.

    ``fine_images (B, C, *kS)`` in [-1, 1] are the input signals at k times their
    resolution (resized from the same originals). Trained only on the input grid, a
    renderer is free to do anything between cell centres; these points teach it what
    a sharper signal looks like there. Returns ``coords (B, M, D)`` and ``target (B, M, C)``.
    """
    batch, channels, *fine_grid = fine_images.shape
    index = torch.randint(0, math.prod(fine_grid), (batch, num_points), generator=generator, device=fine_images.device)
    coords = cell_centres(fine_grid, fine_images.device)[index]  # (B, M, D)
    pixels = rearrange(fine_images, "b c ... -> b (...) c")
    return coords, pixels.gather(1, index.unsqueeze(-1).expand(-1, -1, channels))

"""Context sampling: which samples of a signal the encoder observes. Masks are bool ``(B, 1, *S)``.

``S`` is the signal's grid of any dimension (a series, an image, a volume): masks are drawn on its
flattened points and shaped back. Random masks are drawn where their generator lives (a CUDA
generator draws on the GPU), so that a training step's masks are made on the device, from
(seed, step), with no copy from the host.
"""

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from hypersiren.core.checks import require_count
from hypersiren.core.coordinates import require_grid

# The contiguous-block setting: the first half along the first axis. Images call it by its old name.
HALF_SETTINGS = ("top_half", "first_half")


def _mask_from_counts(counts: Tensor, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """Exactly ``counts[b]`` uniformly random points observed in signal b."""
    batch = counts.shape[0]
    scores = torch.rand(batch, math.prod(shape), generator=generator, device=counts.device)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # a uniformly random permutation per row
    return (ranks < counts.unsqueeze(1)).view(batch, 1, *shape)


def random_context_mask(
    batch_size: int,
    shape: Sequence[int],
    num_context: int | None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Exactly ``num_context`` random observed points of a ``shape`` grid per signal; ``None`` observes all of them."""
    batch_size, shape = require_count(batch_size, "batch_size", low=0), require_grid(shape)
    if num_context is None:
        return torch.ones(batch_size, 1, *shape, dtype=torch.bool, device=device)
    points = math.prod(shape)
    if not 1 <= require_count(num_context, "num_context") <= points:
        raise ValueError(
            f"num_context must be in [1, {points}] for signals of {_named(shape)} points, got {num_context}"
        )
    counts = torch.full((batch_size,), num_context, device=device)
    return _mask_from_counts(counts, shape, generator)


def training_context_mask(
    batch_size: int,
    shape: Sequence[int],
    min_context: int,
    max_context: int,
    log_uniform: bool = False,
    top_half_fraction: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Training masks: k random points per signal, k in [min_context, max_context]; some signals the first half.

    ``log_uniform`` draws k log-uniformly, so 10-100 points are trained as often as
    100-1000 (uniform k would spend ~90% of a 10-1024 range above 100). A fraction
    ``top_half_fraction`` of the signals sees the first half (an image's top half) instead: completion
    from a contiguous block is another task than interpolating scattered points.
    """
    shape = require_grid(shape)
    points = math.prod(shape)
    if not 1 <= min_context <= max_context <= points:
        raise ValueError(f"need 1 <= min_context <= max_context <= {points}, got [{min_context}, {max_context}]")
    device = generator.device if generator is not None else None
    if log_uniform:
        low, high = math.log(min_context), math.log(max_context + 1)
        draws = torch.rand(batch_size, generator=generator, device=device) * (high - low) + low
        counts = draws.exp().floor().long().clamp(min_context, max_context)
    else:
        counts = torch.randint(min_context, max_context + 1, (batch_size,), generator=generator, device=device)
    masks = _mask_from_counts(counts, shape, generator)
    half = torch.rand(batch_size, generator=generator, device=device) < top_half_fraction
    return torch.where(half.view(-1, *[1] * (masks.dim() - 1)), first_half_mask(batch_size, shape, device), masks)


def first_half_mask(batch_size: int, shape: Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """The first ceil(S1/2) cells along the first axis observed: an image's top half, a series' first half."""
    shape = require_grid(shape)
    mask = torch.zeros(batch_size, 1, *shape, dtype=torch.bool, device=device)
    mask[:, :, : (shape[0] + 1) // 2] = True
    return mask


DENSITIES = (0.01, 0.10, 0.98)  # the evaluation protocol's fractions of observed points, with first half and full
PAPER_COUNTS = (10, 100, 1000)  # those densities at 32x32, as the paper (and every 32x32 table here) counts them


def protocol_settings(shape: Sequence[int]) -> tuple[str, ...]:
    """The evaluation protocol on a ``shape`` grid: 1%, 10% and 98% of the points, the first half, all of them.

    Densities mean the same task at every size; they are named by their point counts, which at 32x32
    are the paper's 10 / 100 / 1000 and elsewhere the rounded densities (41 / 410 / 4014 at 64x64).
    Counts are at least 1 and leave at least one point missing; coinciding counts (tiny grids) appear once.
    The half setting is "top_half" for images, "first_half" for other grids.
    """
    shape = require_grid(shape)
    points = math.prod(shape)
    counts = PAPER_COUNTS if shape == (32, 32) else (max(1, round(d * points)) for d in DENSITIES)
    kept = dict.fromkeys(str(count) for count in counts if count < points)
    return (*kept, HALF_SETTINGS[len(shape) != 2], "full")


def context_mask(
    setting: str,
    batch_size: int,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The mask for a named setting: a point count ("10", "100", …), "top_half" / "first_half" or "full"."""
    if setting in HALF_SETTINGS:
        return first_half_mask(batch_size, shape, device)
    if setting == "full":
        return random_context_mask(batch_size, shape, None, device=device)
    if not setting.isdigit():
        raise ValueError(f"unknown context setting {setting!r}: use a point count, 'first_half' or 'full'")
    return random_context_mask(batch_size, shape, int(setting), generator, device)


def _named(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))

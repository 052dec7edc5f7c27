"""Context sampling: which pixels the encoder observes. Masks are bool ``(B, 1, H, W)``.

Random masks are drawn where their generator lives (a CUDA generator draws on the GPU), so that a
training step's masks are made on the device, from (seed, step), with no copy from the host.
"""

import math

import torch
from torch import Tensor

from hypersiren.core.checks import require_count


def _mask_from_counts(counts: Tensor, height: int, width: int, generator: torch.Generator | None) -> Tensor:
    """Exactly ``counts[b]`` uniformly random pixels observed in image b."""
    batch = counts.shape[0]
    scores = torch.rand(batch, height * width, generator=generator, device=counts.device)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # a uniformly random permutation per row
    return (ranks < counts.unsqueeze(1)).view(batch, 1, height, width)


def random_context_mask(
    batch_size: int,
    height: int,
    width: int,
    num_context: int | None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Exactly ``num_context`` random observed pixels per image; ``None`` observes all of them."""
    batch_size = require_count(batch_size, "batch_size", low=0)
    height, width = require_count(height, "height", low=1), require_count(width, "width", low=1)
    if num_context is None:
        return torch.ones(batch_size, 1, height, width, dtype=torch.bool, device=device)
    if not 1 <= require_count(num_context, "num_context") <= height * width:
        raise ValueError(f"num_context must be in [1, {height * width}] for {height}x{width} images, got {num_context}")
    counts = torch.full((batch_size,), num_context, device=device)
    return _mask_from_counts(counts, height, width, generator)


def training_context_mask(
    batch_size: int,
    height: int,
    width: int,
    min_context: int,
    max_context: int,
    log_uniform: bool = False,
    top_half_fraction: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Training masks: k random pixels per image, k in [min_context, max_context]; some images the top half.

    ``log_uniform`` draws k log-uniformly, so 10-100 pixels are trained as often as
    100-1000 (uniform k would spend ~90% of a 10-1024 range above 100). A fraction
    ``top_half_fraction`` of the images sees the top half instead: completion from a
    contiguous block is another task than interpolating scattered pixels.
    """
    if not 1 <= min_context <= max_context <= height * width:
        raise ValueError(
            f"need 1 <= min_context <= max_context <= {height * width}, got [{min_context}, {max_context}]"
        )
    device = generator.device if generator is not None else None
    if log_uniform:
        low, high = math.log(min_context), math.log(max_context + 1)
        draws = torch.rand(batch_size, generator=generator, device=device) * (high - low) + low
        counts = draws.exp().floor().long().clamp(min_context, max_context)
    else:
        counts = torch.randint(min_context, max_context + 1, (batch_size,), generator=generator, device=device)
    masks = _mask_from_counts(counts, height, width, generator)
    half = torch.rand(batch_size, generator=generator, device=device) < top_half_fraction
    return torch.where(half.view(-1, 1, 1, 1), top_half_mask(batch_size, height, width, device), masks)


def top_half_mask(batch_size: int, height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """The top ceil(H/2) rows observed: the classic image-completion task."""
    mask = torch.zeros(batch_size, 1, height, width, dtype=torch.bool, device=device)
    mask[:, :, : (height + 1) // 2] = True
    return mask


DENSITIES = (0.01, 0.10, 0.98)  # the evaluation protocol's fractions of observed pixels, with top half and full
PAPER_COUNTS = (10, 100, 1000)  # those densities at 32x32, as the paper (and every 32x32 table here) counts them


def protocol_settings(height: int, width: int) -> tuple[str, ...]:
    """The evaluation protocol at ``height x width``: 1%, 10% and 98% of the pixels, the top half, all of them.

    Densities mean the same task at every size; they are named by their pixel counts, which at 32x32
    are the paper's 10 / 100 / 1000 and elsewhere the rounded densities (41 / 410 / 4014 at 64x64).
    Counts are at least 1 and leave at least one pixel missing; coinciding counts (tiny images) appear once.
    """
    pixels = height * width
    counts = PAPER_COUNTS if pixels == 32 * 32 else (max(1, round(d * pixels)) for d in DENSITIES)
    kept = dict.fromkeys(str(count) for count in counts if count < pixels)
    return (*kept, "top_half", "full")


def context_mask(
    setting: str,
    batch_size: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The mask for a named setting: a pixel count ("10", "100", …), "top_half" or "full"."""
    if setting == "top_half":
        return top_half_mask(batch_size, height, width, device)
    if setting == "full":
        return random_context_mask(batch_size, height, width, None, device=device)
    if not setting.isdigit():
        raise ValueError(f"unknown context setting {setting!r}: use a pixel count, 'top_half' or 'full'")
    return random_context_mask(batch_size, height, width, int(setting), generator, device)

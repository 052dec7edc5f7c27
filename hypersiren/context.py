"""Context sampling: which pixels the encoder observes. Masks are bool ``(B, 1, H, W)``."""

import torch
from torch import Tensor


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
    if num_context is None:
        return torch.ones(batch_size, 1, height, width, dtype=torch.bool, device=device)
    if not 1 <= num_context <= height * width:
        raise ValueError(f"num_context must be in [1, {height * width}] for {height}x{width} images, got {num_context}")
    counts = torch.full((batch_size,), num_context, device=device)
    return _mask_from_counts(counts, height, width, generator)


def random_range_mask(
    batch_size: int,
    height: int,
    width: int,
    min_context: int,
    max_context: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """For training: each image observes k ~ U{min_context..max_context} random pixels."""
    if not 1 <= min_context <= max_context <= height * width:
        raise ValueError(
            f"need 1 <= min_context <= max_context <= {height * width}, got [{min_context}, {max_context}]"
        )
    counts = torch.randint(min_context, max_context + 1, (batch_size,), generator=generator, device=device)
    return _mask_from_counts(counts, height, width, generator)


def top_half_mask(batch_size: int, height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """The top ceil(H/2) rows observed: the classic image-completion task."""
    mask = torch.zeros(batch_size, 1, height, width, dtype=torch.bool, device=device)
    mask[:, :, : (height + 1) // 2] = True
    return mask


CONTEXT_SETTINGS = ("10", "100", "1000", "top_half", "full")  # the evaluation protocol


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

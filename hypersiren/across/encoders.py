"""Encoders: a (partial) set of a signal's samples -> latent codes.

Every encoder is called the same way, ``encoder(signal (B, C, *S), mask (B, 1, *S)) -> Latents``, where ``S``
is the grid of one, two or three dimensions (a series, an image, a volume; ``dims``), so one encoder class
serves every signal family. ``ConvEncoder`` and ``SetEncoder`` give one global code ``(B, L)`` per signal
(the paper's design); ``UNetEncoder`` also keeps a grid of local codes ``(B, F, *S)``.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hypersiren.across.priors import GaussianPrior
from hypersiren.core.coordinates import cell_centres

CONVOLUTIONS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
AVERAGE_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}  # F.interpolate's multilinear mode of each dimension


class Latents(NamedTuple):
    global_latent: Tensor  # (B, L): the SIREN's weights
    local_grid: Tensor | None  # (B, F, *S): per-point shifts, interpolated at any coordinate; None for global-only


def spatial_mean(features: Tensor) -> Tensor:
    """``(B, F, *S)`` -> ``(B, F)``: the mean over the grid, whatever its dimensions."""
    return features.mean(dim=tuple(range(2, features.dim())))


def average_pool(features: Tensor) -> Tensor:
    """``(B, F, *S)`` -> half the size along every axis (rounded up; an axis of one cell stays one): 2x average
    pooling of any dimension."""
    kernel = [min(2, side) for side in features.shape[2:]]
    return AVERAGE_POOLS[features.dim() - 2](features, kernel_size=kernel, ceil_mode=True)


def resize(features: Tensor, size: Sequence[int]) -> Tensor:
    """``(B, F, *s)`` -> ``(B, F, *size)``, multilinear (``align_corners=False``), any dimension."""
    return F.interpolate(features, size=tuple(size), mode=LINEAR_MODES[features.dim() - 2], align_corners=False)


def zero_unobserved(image: Tensor, mask: Tensor) -> Tensor:
    """``image`` with unobserved pixels zeroed; a NaN there (a common "missing" marker) never leaks through."""
    return torch.where(mask, image, torch.zeros((), dtype=image.dtype, device=image.device))


class ConvEncoder(nn.Module):
    """ReLU CNN over ``[image * mask, mask]`` -> latent ``(B, L)``, any image size.

    The mask is an input channel so an observed black pixel is not confused
    with a missing one. Strided convolutions grow the receptive field fast
    enough that 10 scattered pixels still reach one feature; global average
    pooling makes the code independent of the image size. Widths double as the
    resolution halves, so every stage costs about the same and the whole encoder
    stays a small part of a step next to the hypernetwork and the rendering.
    """

    def __init__(
        self,
        channels: int = 3,
        latent_dim: int = 256,
        widths: Sequence[int] = (32, 64, 128, 256),
        dims: int = 2,
    ):
        super().__init__()
        conv = CONVOLUTIONS[dims]
        layers: list[nn.Module] = [conv(channels + 1, widths[0], 3, padding=1), nn.ReLU()]
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [
                conv(width_in, width_out, 3, stride=2, padding=1),
                nn.ReLU(),
                conv(width_out, width_out, 3, padding=1),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.to_latent = nn.Linear(widths[-1], latent_dim)
        self.channels = channels

    def forward(self, image: Tensor, mask: Tensor) -> Latents:
        """``image (B, C, *S)`` in [-1, 1], ``mask (B, 1, *S)`` bool -> a global latent ``(B, L)``."""
        features = self.features(torch.cat([zero_unobserved(image, mask), mask.to(image.dtype)], dim=1))
        return Latents(self.to_latent(spatial_mean(features)), None)


class SetEncoder(nn.Module):
    """Permutation-invariant encoder over (coordinate, value) pairs, masked mean pooling.

    An image's observed pixels are the pairs (``forward``); ``pool`` takes any point set: the
    CNP-style alternative to ``ConvEncoder`` for scattered observations.
    """

    def __init__(
        self,
        coord_dim: int = 2,
        value_dim: int = 3,
        latent_dim: int = 256,
        hidden_features: int = 256,
        hidden_layers: int = 2,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = coord_dim + value_dim
        for _ in range(hidden_layers + 1):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        self.point_net = nn.Sequential(*layers)
        self.to_latent = nn.Linear(hidden_features, latent_dim)

    def forward(self, image: Tensor, mask: Tensor) -> Latents:
        """``image (B, C, *S)`` in [-1, 1], ``mask (B, 1, *S)`` bool -> a global latent ``(B, L)``: each observed
        sample is a point at its rendering coordinate (``cell_centres``)."""
        coords = cell_centres(image.shape[2:], image.device).expand(image.shape[0], -1, -1)
        values = rearrange(zero_unobserved(image, mask), "b c ... -> b (...) c")
        return Latents(self.pool(coords, values, mask.flatten(1)), None)

    def pool(self, coords: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        """``coords (B, N, D)``, ``values (B, N, C)``, ``mask (B, N)`` bool -> ``(B, L)``, the masked points ignored."""
        if coords.shape[:2] != values.shape[:2] or mask.shape != coords.shape[:2]:
            raise ValueError(
                f"coords {tuple(coords.shape)}, values {tuple(values.shape)} and mask {tuple(mask.shape)} "
                "must share (B, N)"
            )
        weights = mask.to(values.dtype).unsqueeze(-1)  # (B, N, 1)
        features = self.point_net(torch.cat([coords, values], dim=-1))  # (B, N, H)
        pooled = (features * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return self.to_latent(pooled)


def pull_push_fill(image: Tensor, mask: Tensor, levels: int) -> list[Tensor]:
    """Mask-normalized averages of the observed pixels at ``levels`` scales, coarse to fine, gaps filled from above.

    ``image (B, C, *S)``, ``mask (B, 1, *S)`` bool -> per level ``(B, C + 1, *S)``:
    the fill and the fraction of observed pixels it rests on. Level 0 (the last) is
    the image itself where observed. This is pull-push interpolation (Gortler et al.
    1996): a defined, smooth guess at every pixel from 10 scattered pixels or from
    half an image, which a small CNN would otherwise need many layers and steps to learn.
    The push starts from the mean of all observed pixels, so every level is defined.
    """
    size = image.shape[2:]
    sums, counts = zero_unobserved(image, mask), mask.to(image.dtype)
    pulled = [(sums, counts)]
    for _ in range(levels - 1):  # pull: sums and counts at half resolution, (B, C, *s) and (B, 1, *s)
        sums, counts = average_pool(sums), average_pool(counts)
        pulled.append((sums, counts))
    spatial = tuple(range(2, image.dim()))
    fill = pulled[0][0].sum(dim=spatial, keepdim=True) / pulled[0][1].sum(dim=spatial, keepdim=True)  # (B, C, 1, …)
    fills = []
    for sums, counts in reversed(pulled):  # push: a cell with no observed sample takes the coarser fill
        fill = torch.where(counts > 0, sums / counts.clamp_min(1e-8), resize(fill, sums.shape[2:]))
        fills.append(resize(torch.cat([fill, counts], dim=1), size))
    return fills


class UNetEncoder(nn.Module):
    """ReLU U-Net over the observed samples -> global latent ``(B, L)`` and local codes ``(B, F, *S)``.

    One global code cannot carry an image's detail: from 1000 of 1024 pixels it
    still renders a blurred generic face. Local codes at pixel resolution can, and
    the global code still describes the whole image for the SIREN's weights. The
    input is the mask and a pull-push fill at every scale, so even 10 pixels reach
    every position from the first layer. The last C code channels are the finest
    fill itself (the observed pixel where there is one): the network only has to
    learn a correction to it.

    With a ``prior`` (a ``GaussianPrior`` of the training signals, ``model.prior_components``), its
    conditional mean is one more input, and the value guess is a mix of it and the finest fill, weighted by
    a learned function of the observed share (``PriorGate``): the prior is the better guess from few points,
    the fill from many (on OSULeaf the prior alone as the guess cost 9 dB at 98% of the samples).
    """

    def __init__(
        self,
        channels: int = 3,
        latent_dim: int = 128,
        local_features: int = 64,
        widths: Sequence[int] = (32, 64, 96, 128),
        fill_levels: int = 6,
        dims: int = 2,
        prior: GaussianPrior | None = None,
        bounded_codes: bool = False,
    ):
        super().__init__()
        self.fill_levels, self.bounded_codes = fill_levels, bounded_codes
        conv = CONVOLUTIONS[dims]
        in_channels = fill_levels * (channels + 1) + (channels if prior is not None else 0)
        self.down = nn.ModuleList()
        for index, width in enumerate(widths):
            first = (
                conv(in_channels, width, 3, padding=1)
                if index == 0
                else conv(widths[index - 1], width, 3, stride=2, padding=1)
            )
            self.down.append(nn.Sequential(first, nn.ReLU(), conv(width, width, 3, padding=1), nn.ReLU()))
        self.up = nn.ModuleList(
            nn.Sequential(
                conv(wide + narrow, narrow, 3, padding=1),
                nn.ReLU(),
                conv(narrow, narrow, 3, padding=1),
                nn.ReLU(),
            )
            for narrow, wide in zip(widths[:-1], widths[1:])
        )
        self.to_local = conv(widths[0], local_features - channels, 1)
        self.to_latent = nn.Linear(widths[-1], latent_dim)
        self.gate = PriorGate() if prior is not None else None
        self.prior = prior  # registered last: the parameter order of checkpoints saved without one

    def forward(self, image: Tensor, mask: Tensor) -> Latents:
        """``image (B, C, *S)`` in [-1, 1], ``mask (B, 1, *S)`` bool -> ``(B, L)``, local codes ``(B, F, *S)``."""
        fills = pull_push_fill(image, mask, self.fill_levels)
        guess = fills[-1][:, :-1]  # (B, C, *S): the finest fill
        if self.prior is not None:
            linear = self.prior(image, mask)
            fills.append(linear)
            share = self.gate(mask)  # (B, 1, 1, ...): the prior's weight
            guess = share * linear + (1 - share) * guess
        features = torch.cat(fills, dim=1)
        skips = []
        for stage in self.down:
            features = stage(features)
            skips.append(features)
        latent = self.to_latent(spatial_mean(features))
        for stage, skip in zip(reversed(self.up), reversed(skips[:-1])):
            features = stage(torch.cat([upsample(features, size=skip.shape[2:]), skip], dim=1))
        codes = self.to_local(features)
        if self.bounded_codes:  # codes enter the sine's argument: unbounded, they can grow without limit (see model)
            codes = codes.tanh()
        return Latents(latent, torch.cat([codes, guess], dim=1))


class PriorGate(nn.Module):
    """The weight of the prior's guess against the pull-push fill, per signal: ``sigmoid(a·log(share) + b)`` of the
    observed ``share`` of its points, learned. It starts near 1 at 1% observed and near 0.1 at 98%."""

    def __init__(self):
        super().__init__()
        self.slope = nn.Parameter(torch.tensor(-2.0))
        self.offset = nn.Parameter(torch.tensor(2.0 * math.log(0.3)))  # the weight is 1/2 at 30% observed

    def forward(self, mask: Tensor) -> Tensor:
        """``mask (B, 1, *S)`` bool -> the prior's weight ``(B, 1, 1, ...)`` in (0, 1)."""
        share = mask.flatten(1).float().mean(dim=1).clamp_min(1e-6)  # (B,)
        weight = torch.sigmoid(self.slope * share.log() + self.offset)
        return weight.view(-1, *[1] * (mask.dim() - 1))


def upsample(features: Tensor, size: Sequence[int]) -> Tensor:
    """``features (B, F, *s)`` multilinearly resized to ``size`` (``align_corners=False``).

    On CUDA, to exactly twice the size along every axis (every U-Net stage of a power-of-two signal) it
    is ``doubled`` axis by axis: the same numbers up to rounding, with a backward of dense adds, where
    ``F.interpolate``'s backward scatters with atomics (57% of the default step's device time on an H200).
    Elsewhere, and on the CPU, ``F.interpolate``, so CPU runs keep their exact numbers.
    """
    if features.device.type == "cuda" and tuple(size) == tuple(2 * side for side in features.shape[2:]):
        for dim in range(2 - features.dim(), 0):  # every spatial axis, counted from the end
            features = doubled(features, dim=dim)
        return features
    return resize(features, size)


def doubled(features: Tensor, dim: int) -> Tensor:
    """Twice the samples along ``dim`` (a spatial axis counted from the end: -1, -2, …), as multilinear
    ``align_corners=False`` upsampling places them: each new sample is 3/4 of its source plus 1/4 of the
    neighbour on its side, the border sample repeating."""
    count = features.shape[dim]
    before = torch.cat([features.narrow(dim, 0, 1), features.narrow(dim, 0, count - 1)], dim=dim)
    after = torch.cat([features.narrow(dim, 1, count - 1), features.narrow(dim, count - 1, 1)], dim=dim)
    pairs = torch.stack([0.75 * features + 0.25 * before, 0.75 * features + 0.25 * after], dim=dim)
    return pairs.flatten(dim - 1, dim)

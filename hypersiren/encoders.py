"""Encoders: a (partial) set of pixels -> latent code ``(B, L)``."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ConvEncoder(nn.Module):
    """ReLU CNN over ``[image * mask, mask]`` -> latent ``(B, L)``, any image size.

    The mask is an input channel so an observed black pixel is not confused
    with a missing one. Strided convolutions grow the receptive field fast
    enough that 10 scattered pixels still reach one feature; global average
    pooling makes the code independent of the image size. Widths double as the
    resolution halves, so every stage costs about the same and the whole encoder
    stays a small part of a step next to the hypernetwork and the rendering.
    """

    def __init__(self, image_channels: int = 3, latent_dim: int = 256, widths: Sequence[int] = (32, 64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(image_channels + 1, widths[0], 3, padding=1), nn.ReLU()]
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.Conv2d(width_in, width_out, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(width_out, width_out, 3, padding=1),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.to_latent = nn.Linear(widths[-1], latent_dim)
        self.image_channels = image_channels

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """``image (B, C, H, W)`` in [-1, 1], ``mask (B, 1, H, W)`` bool/0-1 -> ``(B, L)``."""
        mask = mask.to(image.dtype)
        features = self.features(torch.cat([image * mask, mask], dim=1))
        return self.to_latent(features.mean(dim=(2, 3)))


class SetEncoder(nn.Module):
    """Permutation-invariant encoder over (coordinate, value) pairs, masked mean pooling.

    ``coords (B, N, D)``, ``values (B, N, C)``, ``mask (B, N)`` -> ``(B, L)``: the
    CNP-style alternative to ``ConvEncoder`` for scattered observations.
    """

    def __init__(
        self, coord_dim: int = 2, value_dim: int = 3, latent_dim: int = 256, hidden_features: int = 256, hidden_layers: int = 2
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = coord_dim + value_dim
        for _ in range(hidden_layers + 1):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        self.point_net = nn.Sequential(*layers)
        self.to_latent = nn.Linear(hidden_features, latent_dim)

    def forward(self, coords: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        if coords.shape[:2] != values.shape[:2] or mask.shape != coords.shape[:2]:
            raise ValueError(
                f"coords {tuple(coords.shape)}, values {tuple(values.shape)} and mask {tuple(mask.shape)} "
                "must share (B, N)"
            )
        weights = mask.to(values.dtype).unsqueeze(-1)  # (B, N, 1)
        features = self.point_net(torch.cat([coords, values], dim=-1))  # (B, N, H)
        pooled = (features * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return self.to_latent(pooled)

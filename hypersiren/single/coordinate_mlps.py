"""Coordinate MLPs: SIREN and the networks it is compared against (Sitzmann et al. 2020, Fig. 1).

Every network here maps ``coords (..., in) -> values (..., out)`` like ``Siren``,
with the same width and depth, so a comparison changes only the activation (and,
for ``relu_pe``, the input encoding). Linear layers keep PyTorch's default init.
"""

import math
from typing import Literal

import torch
from torch import Tensor, nn

from hypersiren.core.siren import Siren

Activation = Literal["relu", "tanh", "relu_pe", "siren"]
ACTIVATIONS: tuple[Activation, ...] = ("relu", "tanh", "relu_pe", "siren")


def nyquist_frequencies(samples: int) -> int:
    """Octaves of positional encoding a grid of ``samples`` per axis can resolve on [-1, 1].

    The grid's Nyquist rate is samples/4 cycles per unit; frequencies 2^0 … 2^(L-1)
    cycles per unit stay at or below it. This is the paper's rule
    (``get_num_frequencies_nyquist``): 6 octaves for 256 pixels.
    """
    return max(1, math.floor(math.log2(samples / 4)))


class PositionalEncoding(nn.Module):
    """``(..., D) -> (..., D (1 + 2 L))``: x, then sin and cos of 2^k·π·x for k < L (NeRF's encoding)."""

    def __init__(self, num_frequencies: int):
        super().__init__()
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(num_frequencies), persistent=False)

    def out_features(self, in_features: int) -> int:
        return in_features * (1 + 2 * len(self.frequencies))

    def forward(self, coords: Tensor) -> Tensor:
        angles = (coords.unsqueeze(-1) * self.frequencies).flatten(-2)
        return torch.cat([coords, torch.sin(angles), torch.cos(angles)], dim=-1)


def coordinate_mlp(
    activation: Activation,
    in_features: int = 2,
    hidden_features: int = 256,
    hidden_layers: int = 3,
    out_features: int = 1,
    num_frequencies: int = 6,
    omega: float = 30.0,
    seed: int = 0,
) -> nn.Module:
    """A coordinate MLP with ``hidden_layers + 1`` hidden activations of width ``hidden_features``.

    ``num_frequencies`` is used by ``relu_pe`` only, ``omega`` by ``siren`` only. Its weights are drawn from
    ``seed`` (torch's global generator is left as it was), so the same call fits to the same PSNR every time:
    unseeded, one SIREN fit of a photo gave 32.4 dB and the next 33.2.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {ACTIVATIONS}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if activation == "siren":
            return Siren(in_features, hidden_features, hidden_layers, out_features, omega, omega)
        layers: list[nn.Module] = []
        width = in_features
        if activation == "relu_pe":
            encoding = PositionalEncoding(num_frequencies)
            layers.append(encoding)
            width = encoding.out_features(in_features)
        for _ in range(hidden_layers + 1):
            layers += [nn.Linear(width, hidden_features), nn.Tanh() if activation == "tanh" else nn.ReLU()]
            width = hidden_features
        layers.append(nn.Linear(width, out_features))
        return nn.Sequential(*layers)

"""Decoders: a signal's latent codes -> its values at any coordinates, behind one contract.

Every decoder is called the same way, ``decoder(latents, coords (B, N, D)) -> Decoded``, so the model
composes an encoder with any of them and has no branch on which it is; a new decoder is one class.

- ``SirenDecoder``, HyperSiren's own: the hypernetwork turns the global code into a SIREN per signal
  and the local codes, sampled at each point, shift its biases (functa's modulations).
- ``CellHead``, the ablation that answers a reviewer's first question (how much do the generated
  function and its rendering add?): the same local codes -> a value per grid cell by a two-layer
  1x1 convolution, interpolated multilinearly between cell centres.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hypersiren.across.encoders import CONVOLUTIONS, Latents
from hypersiren.across.hypernet import HyperNetwork, ShiftModulator
from hypersiren.core.render import SirenParams, check_coords, render
from hypersiren.core.siren import SirenConfig


class Decoded(NamedTuple):
    values: Tensor  # (B, N, C) in model space [-1, 1], as rendered (no clamping)
    params: SirenParams  # the generated SIRENs, for the weight regularizer; [] for a decoder without them


class SirenDecoder(nn.Module):
    """Global code -> a SIREN per signal (``HyperNetwork``); local codes -> per-point bias shifts of it."""

    def __init__(
        self,
        siren: SirenConfig,
        latent_dim: int,
        hyper_hidden_features: int,
        hyper_hidden_layers: int,
        local_features: int | None,
    ):
        super().__init__()
        self.siren = siren
        # registered before the hypernetwork: the parameter order of every checkpoint saved so far
        self.modulator = None if local_features is None else ShiftModulator(siren, local_features, passthrough=True)
        self.hypernet = HyperNetwork(siren, latent_dim, hyper_hidden_features, hyper_hidden_layers)

    def forward(self, latents: Latents, coords: Tensor) -> Decoded:
        """``coords (B, N, D)`` -> values ``(B, N, C)``, rendered in fp32 even under autocast.

        sin(30 * x) in bf16 has ~0.1 rad phase error: bf16 params from an autocast hypernetwork
        are cast up here, and the shifts (which enter the sine's argument) and
        ``render.render`` itself run with autocast off.
        """
        params = self.hypernet(latents.global_latent)
        check_coords(params, coords)  # before sampling the grid, so bad coords get render's message
        fp32 = [type(layer)(*(t.float() for t in layer)) for layer in params]
        shifts = self.shifts(latents.local_grid, coords)
        values = render(fp32, coords.float(), self.siren.first_omega, self.siren.hidden_omega, shifts)
        return Decoded(values, params)

    def shifts(self, local_grid: Tensor | None, coords: Tensor) -> list[Tensor] | None:
        """The local codes at ``coords (B, N, D)`` as per-layer bias shifts ``(B, N, fan_out)``, in fp32
        (they enter the sine's argument); None without a grid (the global-only model)."""
        if local_grid is None:
            return None
        with torch.autocast(coords.device.type, enabled=False):
            return self.modulator(sample_grid(local_grid.float(), coords.float()))


class CellHead(nn.Module):
    """Local codes ``(B, F, *S)`` -> a value per cell ``(B, C, *S)``: a correction of the code's guess.

    The code's last ``C`` channels are the encoder's pull-push fill (the observed value where there is
    one), as for the SIREN decoder's passthrough shift; a two-layer 1x1 convolution learns a correction
    to it, starting at zero. Between cell centres the values are interpolated multilinearly.
    """

    def __init__(self, local_features: int, channels: int, dims: int = 2, hidden_features: int = 64):
        super().__init__()
        conv = CONVOLUTIONS[dims]
        self.channels = channels
        self.correction = nn.Sequential(
            conv(local_features, hidden_features, 1), nn.ReLU(), conv(hidden_features, channels, 1)
        )
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    def cells(self, local_grid: Tensor) -> Tensor:
        """``(B, F, *S)`` -> ``(B, C, *S)``, the value of every cell."""
        return local_grid[:, -self.channels :] + self.correction(local_grid)

    def forward(self, latents: Latents, coords: Tensor) -> Decoded:
        """``coords (B, N, D)`` -> ``(B, N, C)``: the cells' values, exact at their centres."""
        return Decoded(sample_grid(self.cells(latents.local_grid), coords), [])


def sample_grid(grid: Tensor, coords: Tensor) -> Tensor:
    """Multilinear interpolation of ``grid (B, F, *S)`` at ``coords (B, N, D)`` in [-1, 1] -> ``(B, N, F)``.

    ``align_corners=False`` is ``cell_centres``'s convention: at a cell centre the code is exactly
    that cell's; beyond the outer centres the border code holds. A series is sampled as an image one
    row high (``grid_sample`` has no 1-D mode), at that row's centre.
    """
    dims = grid.dim() - 2
    if coords.shape[-1] != dims:
        raise ValueError(f"coords {tuple(coords.shape)} must have {dims} coordinates per point for a {dims}-D grid")
    if dims == 1:
        grid, coords = grid.unsqueeze(2), torch.cat([torch.zeros_like(coords), coords], dim=-1)
    points = coords.flip(-1).view(coords.shape[0], coords.shape[1], *[1] * (max(dims, 2) - 1), coords.shape[-1])
    sampled = F.grid_sample(grid, points, mode="bilinear", padding_mode="border", align_corners=False)
    return rearrange(sampled, "b f n ... -> b n (f ...)")

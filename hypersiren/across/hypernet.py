"""Hypernetwork: latent code -> the full parameter set of one SIREN per sample."""

import math

import torch
from torch import Tensor, nn

from hypersiren.core.render import LayerParams, SirenParams
from hypersiren.core.siren import SirenConfig, bias_bound, init_siren_params, weight_bound


class HyperNetwork(nn.Module):
    """``latent (B, L) -> SirenParams`` with weights ``(B, in, out)`` and biases ``(B, out)``.

    The paper's design has one ReLU MLP per SIREN tensor. Here one ReLU trunk
    feeds one linear head that emits every tensor at once: the head, which holds
    >99% of the FLOPs, is unchanged, but the step is a handful of large GEMMs
    instead of ~30 small ones. (The paper's design is the special case where the
    per-tensor trunks happen to be equal; ``eval/bench.py`` uses that to compare
    both at equal numerics.)
    """

    def __init__(
        self,
        siren: SirenConfig,
        latent_dim: int = 256,
        hidden_features: int = 256,
        hidden_layers: int = 1,
        delta_scale: float = 0.1,
    ):
        super().__init__()
        self.siren = siren
        self.shapes = [((fan_in, fan_out), (fan_out,)) for fan_in, fan_out in siren.layer_shapes]
        self.sizes = [math.prod(shape) for pair in self.shapes for shape in pair]
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(hidden_layers + 1):
            linear = nn.Linear(width, hidden_features)
            # He init: unit-variance latents give trunk features of unit second moment, the
            # scale _init_head relies on (PyTorch's default shrinks them ~2.5x per layer).
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            layers += [linear, nn.ReLU()]
            width = hidden_features
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(hidden_features, sum(self.sizes))
        self._init_head(delta_scale)

    @torch.no_grad()
    def _init_head(self, delta_scale: float) -> None:
        # The head's bias is a SIREN initialization, so before training every latent maps
        # to a well-initialized SIREN. Its weight is scaled per tensor so that the
        # latent-dependent part starts at ``delta_scale`` x the SIREN init std (for
        # unit-variance latents): large enough to carry gradient to the latent,
        # small enough not to wreck the sine init (the paper's global /100 ignores that
        # hidden SIREN weights are ~10x smaller than biases).
        initial = init_siren_params(self.siren)
        self.head.bias.copy_(torch.cat([tensor.flatten() for layer in initial for tensor in layer]))
        init_stds = [
            bound(self.siren, layer) / math.sqrt(3.0)  # std of U(-a, a)
            for layer in range(len(self.shapes))
            for bound in (weight_bound, bias_bound)
        ]
        for rows, init_std in zip(torch.split(self.head.weight, self.sizes), init_stds):
            bound_for_std = math.sqrt(3.0 / self.head.in_features) * delta_scale * init_std
            rows.uniform_(-bound_for_std, bound_for_std)

    def forward(self, latent: Tensor) -> SirenParams:
        if latent.dim() != 2 or latent.shape[1] != self.trunk[0].in_features:
            raise ValueError(f"latent must be (B, {self.trunk[0].in_features}), got shape {tuple(latent.shape)}")
        features = self.trunk(latent)  # (B, H)
        flat = self.head(features)  # (B, P)
        pieces = iter(torch.split(flat, self.sizes, dim=1))
        batch = latent.shape[0]
        return [
            LayerParams(next(pieces).view(batch, *weight_shape), next(pieces).view(batch, *bias_shape))
            for weight_shape, bias_shape in self.shapes
        ]


class ShiftModulator(nn.Module):
    """Local code at each point ``(B, N, F)`` -> per-point shifts of every SIREN layer's bias.

    Shifts (per-layer FiLM offsets, as in functa) let one SIREN per image vary its
    function from place to place. Hidden-layer shifts start at about one radian of
    phase (rows scaled by 1/omega), the output layer's at the colour scale. With
    ``passthrough``, the code's last ``out_features`` channels start as the output
    layer's shift unchanged: a code that ends with a colour guess renders that guess
    before any training, and training learns corrections to it.
    """

    def __init__(self, siren: SirenConfig, local_features: int = 64, passthrough: bool = False):
        super().__init__()
        self.sizes = [fan_out for _, fan_out in siren.layer_shapes]
        self.linear = nn.Linear(local_features, sum(self.sizes))
        with torch.no_grad():
            self.linear.bias.zero_()
            std = 1.0 / math.sqrt(local_features)
            for index, rows in enumerate(torch.split(self.linear.weight, self.sizes)):
                omega = siren.first_omega if index == 0 else siren.hidden_omega
                scale = std if index == len(self.sizes) - 1 else std / omega
                rows.uniform_(-math.sqrt(3.0) * scale, math.sqrt(3.0) * scale)
            if passthrough:
                output_rows = self.linear.weight[-siren.out_features :]
                output_rows.zero_()
                output_rows[:, -siren.out_features :] = torch.eye(siren.out_features)

    def forward(self, local_code: Tensor) -> list[Tensor]:
        """``(B, N, F)`` -> one ``(B, N, fan_out)`` per layer."""
        return list(torch.split(self.linear(local_code), self.sizes, dim=-1))

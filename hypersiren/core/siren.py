"""SIREN: sine-activated MLP, its initialization rule and the standalone module.

A SIREN layer computes ``sin(omega * (x @ W + b))``. The init keeps activations
distributed as arcsine(−1, 1) through depth (Sitzmann et al. 2020, Sec. 3.2):
the first layer spans several periods of the sine over the input domain, later
layers are scaled down by omega so that omega * (x @ W) has unit-ish variance.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hypersiren.core.checks import require_count, require_tensor
from hypersiren.core.render import LayerParams, SirenParams, render


@dataclass(frozen=True)
class SirenConfig:
    in_features: int = 2
    hidden_features: int = 256
    hidden_layers: int = 3
    out_features: int = 3
    first_omega: float = 30.0
    hidden_omega: float = 30.0

    def __post_init__(self) -> None:
        """Refuse sizes that are not whole counts and omegas that are not finite and positive, before any tensor is
        built from them (torch's own refusal of a width of 8.5 names no argument)."""
        for name in ("in_features", "hidden_features", "out_features"):
            require_count(getattr(self, name), name, low=1)
        require_count(self.hidden_layers, "hidden_layers", low=0)
        for name in ("first_omega", "hidden_omega"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every linear layer, first to last."""
        widths = [self.in_features] + [self.hidden_features] * (self.hidden_layers + 1) + [self.out_features]
        return list(zip(widths[:-1], widths[1:]))


def weight_bound(config: SirenConfig, layer: int) -> float:
    """Half-width of the uniform init of layer ``layer``'s weights."""
    fan_in = config.layer_shapes[layer][0]
    if layer == 0:
        # U(-1/n, 1/n): with omega=30 the first layer covers ~30/n periods per unit input,
        # enough frequency content for images without aliasing the sine.
        return 1.0 / fan_in
    # U(-sqrt(6/n)/omega, sqrt(6/n)/omega): omega * (x @ W) ~ N(0, 1) for arcsine-distributed x
    # (variance n * (2/n) * 1/2), so the next sine output is arcsine-distributed again.
    return math.sqrt(6.0 / fan_in) / config.hidden_omega


def bias_bound(config: SirenConfig, layer: int) -> float:
    """Half-width of the uniform bias init: PyTorch's nn.Linear default, as in the paper's code."""
    return 1.0 / math.sqrt(config.layer_shapes[layer][0])


def init_siren_params(
    config: SirenConfig, batch_size: int = 1, generator: torch.Generator | None = None
) -> SirenParams:
    """Independent SIREN initializations: weights ``(B, in, out)``, biases ``(B, out)``."""
    params = []
    for layer, (fan_in, fan_out) in enumerate(config.layer_shapes):
        w = weight_bound(config, layer) * (2 * torch.rand(batch_size, fan_in, fan_out, generator=generator) - 1)
        b = bias_bound(config, layer) * (2 * torch.rand(batch_size, fan_out, generator=generator) - 1)
        params.append(LayerParams(w, b))
    return params


class Siren(nn.Module):
    """One SIREN for one signal. ``forward(coords (..., N, in)) -> (..., N, out)``.

    Its parameters are stored with a leading batch dim of 1, in exactly the
    structure the hypernetwork emits, so both render through ``render.render``.
    """

    def __init__(
        self,
        in_features: int = 2,
        hidden_features: int = 256,
        hidden_layers: int = 3,
        out_features: int = 3,
        first_omega: float = 30.0,
        hidden_omega: float = 30.0,
    ):
        super().__init__()
        self.config = SirenConfig(in_features, hidden_features, hidden_layers, out_features, first_omega, hidden_omega)
        initial = init_siren_params(self.config)
        self.weights = nn.ParameterList([nn.Parameter(layer.weight) for layer in initial])
        self.biases = nn.ParameterList([nn.Parameter(layer.bias) for layer in initial])

    @property
    def params(self) -> SirenParams:
        """Parameters as ``[LayerParams(weight (1, in, out), bias (1, out)), ...]``."""
        return [LayerParams(w, b) for w, b in zip(self.weights, self.biases)]

    def forward(self, coords: Tensor) -> Tensor:
        require_tensor(coords, "coords")
        if coords.dim() < 2:
            raise ValueError(f"coords must be (..., N, {self.config.in_features}), got shape {tuple(coords.shape)}")
        flat = coords.reshape(1, -1, coords.shape[-1])  # every point through the one shared network
        values = render(self.params, flat, self.config.first_omega, self.config.hidden_omega)
        return values.reshape(*coords.shape[:-1], self.config.out_features)

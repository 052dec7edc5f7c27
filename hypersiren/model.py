"""HyperSiren: encoder -> hypernetwork -> functional SIREN, composed."""

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from hypersiren.encoders import ConvEncoder, SetEncoder
from hypersiren.functional import SirenParams, pixel_grid, render
from hypersiren.hypernet import HyperNetwork
from hypersiren.siren import SirenConfig


@dataclass
class ModelConfig:
    image_channels: int = 3
    latent_dim: int = 256
    encoder: Literal["conv", "set"] = "conv"
    encoder_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    siren_hidden_features: int = 256
    siren_hidden_layers: int = 3
    omega: float = 30.0
    hyper_hidden_features: int = 256
    hyper_hidden_layers: int = 1

    @property
    def siren(self) -> SirenConfig:
        return SirenConfig(
            in_features=2,
            hidden_features=self.siren_hidden_features,
            hidden_layers=self.siren_hidden_layers,
            out_features=self.image_channels,
            first_omega=self.omega,
            hidden_omega=self.omega,
        )


class Prediction(NamedTuple):
    values: Tensor  # (B, N, C) in model space [-1, 1]
    latent: Tensor  # (B, L)
    params: SirenParams  # the generated SIRENs, for the weight regularizer


class HyperSiren(nn.Module):
    """Images (any size, any observed subset) -> a SIREN per image -> values anywhere."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        if config.encoder == "conv":
            self.encoder: nn.Module = ConvEncoder(config.image_channels, config.latent_dim, config.encoder_widths)
        elif config.encoder == "set":
            self.encoder = SetEncoder(2, config.image_channels, config.latent_dim)
        else:
            raise ValueError(f"unknown encoder {config.encoder!r}: choose 'conv' or 'set'")
        self.hypernet = HyperNetwork(
            config.siren, config.latent_dim, config.hyper_hidden_features, config.hyper_hidden_layers
        )

    def encode(self, image: Tensor, mask: Tensor) -> Tensor:
        """``image (B, C, H, W)`` in [-1, 1], ``mask (B, 1, H, W)`` -> latent ``(B, L)``."""
        self._check_inputs(image, mask)
        if isinstance(self.encoder, ConvEncoder):
            return self.encoder(image, mask)
        height, width = image.shape[-2:]
        coords = pixel_grid(height, width, image.device).expand(image.shape[0], -1, -1)
        return self.encoder(coords, rearrange(image, "b c h w -> b (h w) c"), rearrange(mask, "b 1 h w -> b (h w)"))

    def render(self, params: SirenParams, coords: Tensor) -> Tensor:
        """``coords (B, N, 2)`` -> ``(B, N, C)``; rendered in fp32 even under autocast.

        sin(30 * x) in bf16 has ~0.1 rad phase error: bf16 params from an autocast hypernetwork
        are cast up here, and ``functional.render`` itself runs with autocast off.
        """
        params = [type(layer)(*(t.float() for t in layer)) for layer in params]
        return render(params, coords.float(), self.config.omega, self.config.omega)

    def forward(self, image: Tensor, mask: Tensor, coords: Tensor) -> Prediction:
        latent = self.encode(image, mask)
        params = self.hypernet(latent)
        return Prediction(self.render(params, coords), latent, params)

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor, size: tuple[int, int] | None = None, chunk_size: int = 65536) -> Tensor:
        """Complete images from the observed pixels: ``-> (B, C, H', W')`` in [-1, 1].

        ``size=(H', W')`` renders the same continuous image at another resolution;
        points are rendered ``chunk_size`` at a time so memory stays bounded.
        """
        height, width = size or image.shape[-2:]
        params = self.hypernet(self.encode(image, mask))
        coords = pixel_grid(height, width, image.device).expand(image.shape[0], -1, -1)
        values = torch.cat([self.render(params, chunk) for chunk in coords.split(chunk_size, dim=1)], dim=1)
        return rearrange(values, "b (h w) c -> b c h w", h=height, w=width)

    def _check_inputs(self, image: Tensor, mask: Tensor) -> None:
        channels = self.config.image_channels
        if image.dim() != 4 or image.shape[1] != channels:
            raise ValueError(f"image must be (B, {channels}, H, W), got shape {tuple(image.shape)}")
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"mask must be (B, 1, H, W) matching image {tuple(image.shape)}, got shape {tuple(mask.shape)}"
            )
        if not image.is_floating_point():
            raise ValueError(
                f"image must be floating point in [-1, 1], got {image.dtype}: convert uint8 images with "
                "hypersiren.data.to_model_space"
            )
        if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
            # A mask is which pixels are observed, not weights: 255 or 0.5 would scale the encoder's input.
            raise ValueError(
                f"mask must be bool or hold only 0 and 1, got {mask.dtype} values such as "
                f"{mask[(mask != 0) & (mask != 1)][0].item()}: pass mask > 0 (or mask > 0.5 for soft masks)"
            )
        observed = mask.bool()
        seen = observed.flatten(1).any(dim=1)
        if not bool(seen.all()):
            empty = (~seen).nonzero().flatten().tolist()
            raise ValueError(f"mask observes no pixel in images {empty}: give each image at least one context pixel")
        # Only observed pixels are checked: unobserved ones may hold anything, NaN included (a common
        # way to mark "missing"), and the encoders must never let them reach the output.
        if not bool(torch.isfinite(image).logical_or(~observed).all()):
            raise ValueError("image has NaN or inf at observed pixels: observed pixels must be finite")
        largest = image.abs().where(observed, 0.0).max().item()  # no NaN left: observed ones were refused above
        if largest > 1 + 1e-3:
            raise ValueError(
                f"observed image values reach {largest:g}, outside the model's [-1, 1]: convert [0, 255] "
                "images with hypersiren.data.to_model_space"
            )

"""HyperSiren: encoder -> hypernetwork -> functional SIREN, composed."""

import numbers
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hypersiren.across.encoders import ConvEncoder, Latents, SetEncoder, UNetEncoder, zero_unobserved
from hypersiren.across.hypernet import HyperNetwork, ShiftModulator
from hypersiren.across.memory import inpaint_bytes, require_memory
from hypersiren.across.pixel_head import PixelHead
from hypersiren.across.rules import ConfigError, model_problems
from hypersiren.core.checks import require_tensor
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.render import SirenParams, check_coords, render
from hypersiren.core.siren import SirenConfig


@dataclass
class ModelConfig:
    image_channels: int = 3
    latent_dim: int = 128
    # "unet": global latent -> SIREN weights plus a grid of local codes -> per-point shifts;
    # "conv" / "set": the paper's global latent only.
    encoder: Literal["unet", "conv", "set"] = "unet"
    encoder_widths: list[int] = field(default_factory=lambda: [32, 64, 96, 128])
    local_features: int = 64  # channels of the local code grid ("unet" only), the last image_channels a colour guess
    # "siren": hypernetwork -> SIREN weights, local codes -> its shifts; "pixel": the ablation, the same
    # "unet" encoder with a 1x1-conv pixel head (PixelHead), no hypernetwork and no SIREN.
    decoder: Literal["siren", "pixel"] = "siren"
    siren_hidden_features: int = 128
    siren_hidden_layers: int = 3
    omega: float = 30.0
    hyper_hidden_features: int = 128
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
    latent: Tensor  # (B, L) global latent
    params: SirenParams  # the generated SIRENs, for the weight regularizer


@dataclass(frozen=True)
class Refinement:
    """Test-time refinement of the latents on the observed pixels (``steps=0``: feed-forward only).

    ``prior_weight`` pulls the latents toward the encoder's prediction, which holds
    what the training set taught about the unobserved pixels.
    """

    steps: int = 0
    lr: float = 1e-2
    prior_weight: float = 1e-2


class HyperSiren(nn.Module):
    """Images (any size, any observed subset) -> a SIREN per image -> values anywhere."""

    def __init__(self, config: ModelConfig, refinement: Refinement = Refinement(), supersample: int = 1):
        problems = model_problems(config)
        if problems:
            raise ConfigError(f"invalid ModelConfig: {'; '.join(problems)}")  # a ValueError
        super().__init__()
        self.config = config
        self.refinement = refinement  # inpaint's default: none, measured not to pay on the default model (README)
        # inpaint's default: load_run sets 2 for runs trained between pixel centres (train.fine_points), where
        # averaging over a pixel's area pays (README); elsewhere the function off the centres was never taught.
        self.supersample = supersample
        self.modulator: ShiftModulator | None = None
        self.hypernet: HyperNetwork | None = None
        self.pixel_head: PixelHead | None = None
        if config.encoder == "unet":
            self.encoder: nn.Module = UNetEncoder(
                config.image_channels, config.latent_dim, config.local_features, config.encoder_widths
            )
            self.modulator = ShiftModulator(config.siren, config.local_features, passthrough=True)
        elif config.encoder == "conv":
            self.encoder = ConvEncoder(config.image_channels, config.latent_dim, config.encoder_widths)
        else:
            self.encoder = SetEncoder(2, config.image_channels, config.latent_dim)
        if config.decoder == "pixel":
            self.modulator = None
            self.pixel_head = PixelHead(config.local_features, config.image_channels)
        else:
            self.hypernet = HyperNetwork(
                config.siren, config.latent_dim, config.hyper_hidden_features, config.hyper_hidden_layers
            )

    def encode(self, image: Tensor, mask: Tensor) -> Latents:
        """``image (B, C, H, W)`` in [-1, 1], ``mask (B, 1, H, W)`` -> the latents of each image.

        A floating-point image of another dtype than the model's (float64, float16) is cast to it.
        """
        self._check_inputs(image, mask)
        return self._encode(image, mask)

    def _encode(self, image: Tensor, mask: Tensor) -> Latents:
        """``encode`` of inputs already checked (``inpaint`` checks them before estimating its memory), or trusted
        (``forward``); shapes only are checked, which needs no value from the device."""
        self._check_shapes(image, mask)
        return self.encoder(image.to(self.encoder_dtype), mask.bool())

    @property
    def encoder_dtype(self) -> torch.dtype:
        """The dtype ``encode`` casts images to: its weights'."""
        return next(self.encoder.parameters()).dtype

    def render(self, params: SirenParams, local_grid: Tensor | None, coords: Tensor) -> Tensor:
        """``coords (B, N, 2)`` -> ``(B, N, C)``; rendered in fp32 even under autocast.

        sin(30 * x) in bf16 has ~0.1 rad phase error: bf16 params from an autocast hypernetwork
        are cast up here, and the shifts (which enter the sine's argument) and
        ``render.render`` itself run with autocast off.
        """
        check_coords(params, coords)  # before sampling the grid, so bad coords get render's message
        params = [type(layer)(*(t.float() for t in layer)) for layer in params]
        return render(params, coords.float(), self.config.omega, self.config.omega, self.shifts(local_grid, coords))

    def shifts(self, local_grid: Tensor | None, coords: Tensor) -> list[Tensor] | None:
        """The local codes at ``coords (B, N, 2)`` as per-layer bias shifts ``(B, N, fan_out)``, in fp32.

        None without a grid (the global-only model)."""
        if local_grid is None:
            return None
        with torch.autocast(coords.device.type, enabled=False):
            return self.modulator(sample_grid(local_grid.float(), coords.float()))

    def forward(self, image: Tensor, mask: Tensor, coords: Tensor) -> Prediction:
        """The raw prediction at ``coords (B, N, 2)``: values ``(B, N, C)`` as rendered, observed pixels
        included (no pasting, no clamping: what the training loss sees), with the latent and SIREN params.

        The training step's path: it trusts its inputs (``data.training_batch`` makes them), because checking
        their values means waiting on the device every step. ``encode`` and ``inpaint`` check what users pass;
        shapes are still checked here, which costs no wait."""
        if coords.dim() == 3 and coords.shape[1] == 0:  # other shapes get render's message
            raise ValueError(f"coords {tuple(coords.shape)} hold no point (N = 0): pass at least one point per image")
        latents = self._encode(image, mask)
        if self.pixel_head is not None:  # the ablation: its pixel grid, interpolated (exact at pixel centres)
            return Prediction(sample_grid(self.pixel_head(latents.local_grid), coords), latents.global_latent, [])
        params = self.hypernet(latents.global_latent)
        return Prediction(self.render(params, latents.local_grid, coords), latents.global_latent, params)

    def values(self, latents: Latents, coords: Tensor) -> Tensor:
        """The decoded values of ``latents`` at ``coords (B, N, 2)`` -> ``(B, N, C)``."""
        if self.pixel_head is not None:
            return sample_grid(self.pixel_head(latents.local_grid), coords)
        return self.render(self.hypernet(latents.global_latent), latents.local_grid, coords)

    @torch.no_grad()
    def inpaint(
        self,
        image: Tensor,
        mask: Tensor,
        size: tuple[int, int] | None = None,
        chunk_size: int = 65536,
        refinement: Refinement | None = None,
        raw: bool = False,
        supersample: int | None = None,
    ) -> Tensor:
        """Complete images from the observed pixels: ``-> (B, C, H', W')`` in [-1, 1].

        By default what a user wants: the observed pixels kept exactly as given (at the
        input's own size) and every value clamped to [-1, 1]. ``raw=True`` returns the
        rendering as it is, observed pixels re-rendered too (the "raw" row of evaluations).
        ``size=(H', W')`` renders the same continuous image at another resolution, ``chunk_size``
        points at a time so memory stays bounded; ``refinement`` defaults to ``self.refinement``.
        Each output pixel is the mean of ``supersample²`` points spread over its area (1: its centre
        only; default ``self.supersample``): a pixel of a photo is the scene averaged over its area,
        and only a function can be averaged so (+0.5 dB at 1000 of 1024 pixels on held-out faces,
        README). The pixel decoder ignores it.
        A call whose estimated memory (``memory.inpaint_bytes``) exceeds the device's raises
        ``MemoryLimitError`` (a ValueError) before anything is computed.
        """
        height, width = _render_size(size, image)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1 (points rendered at a time), got {chunk_size!r}")
        supersample = self.supersample if supersample is None else supersample
        if isinstance(supersample, bool) or not isinstance(supersample, numbers.Integral) or supersample < 1:
            raise ValueError(f"supersample must be an integer >= 1 (1: pixel centres only), got {supersample!r}")
        self._check_inputs(image, mask)
        batch, _, input_height, input_width = image.shape
        require_memory(
            inpaint_bytes(self.config, batch, input_height, input_width, (height, width), chunk_size, supersample),
            device=image.device,
            what=f"inpainting {batch} images of {input_height}x{input_width} at {height}x{width}",
            fix="render a smaller size, or fewer images (or chunk_size points) at a time",
        )
        latents = self._encode(image, mask)
        refinement = self.refinement if refinement is None else refinement
        if refinement.steps > 0:
            latents = self.refine(image, mask.bool(), latents, refinement, chunk_size)
        if self.pixel_head is not None:  # the ablation: its own grid, pasted, then bicubic to another size
            completed = self.pixel_head(latents.local_grid)
            if not raw:
                completed = torch.where(mask.bool(), image, completed).clamp(-1.0, 1.0)
            if (height, width) != tuple(image.shape[-2:]):
                completed = F.interpolate(completed, size=(height, width), mode="bicubic", align_corners=False)
            return completed if raw else completed.clamp(-1.0, 1.0)
        params = self.hypernet(latents.global_latent)
        fine_height, fine_width = supersample * height, supersample * width
        coords = cell_centres((fine_height, fine_width), image.device).expand(image.shape[0], -1, -1)
        values = torch.cat(
            [self.render(params, latents.local_grid, chunk) for chunk in coords.split(chunk_size, dim=1)], dim=1
        )
        completed = F.avg_pool2d(rearrange(values, "b (h w) c -> b c h w", h=fine_height, w=fine_width), supersample)
        if raw:
            return completed
        if (height, width) == tuple(image.shape[-2:]):
            completed = torch.where(mask.bool(), image, completed)
        return completed.clamp(-1.0, 1.0)

    @torch.enable_grad()
    def refine(self, image: Tensor, mask: Tensor, latents: Latents, refinement: Refinement, chunk_size: int) -> Latents:
        """A few Adam steps on the latents, fitting the observed pixels; per image the best step is kept.

        Keeping the best (step 0 included) means refinement never lowers an image's
        PSNR on its observed pixels. Images are refined in groups of at most
        ``chunk_size`` pixels in all, so memory stays bounded for any batch.
        """
        group = max(1, chunk_size // (image.shape[-2] * image.shape[-1]))
        refined = [
            self._refine_group(
                image[part], mask[part], Latents(*(t[part] if t is not None else None for t in latents)), refinement
            )
            for part in (slice(start, start + group) for start in range(0, image.shape[0], group))
        ]
        return Latents(*(torch.cat(parts) if parts[0] is not None else None for parts in zip(*refined)))

    def _refine_group(self, image: Tensor, mask: Tensor, start: Latents, refinement: Refinement) -> Latents:
        variables = [t.detach().clone().requires_grad_() for t in start if t is not None]
        optimizer = torch.optim.Adam(variables, lr=refinement.lr)
        coords = cell_centres(image.shape[-2:], image.device).expand(image.shape[0], -1, -1)
        target = rearrange(zero_unobserved(image, mask), "b c h w -> b (h w) c")
        weight = rearrange(mask, "b 1 h w -> b (h w) 1").to(image.dtype)
        best = [t.detach().clone() for t in variables]
        best_error = torch.full((image.shape[0],), float("inf"), device=image.device)
        for step in range(refinement.steps + 1):
            current = Latents(variables[0], variables[1] if len(variables) > 1 else None)
            values = self.values(current, coords)
            error = ((values - target).square() * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2))  # (B,)
            improved = error.detach() < best_error
            best_error = torch.where(improved, error.detach(), best_error)
            for kept, variable in zip(best, variables):
                kept.copy_(torch.where(improved.view(-1, *[1] * (kept.dim() - 1)), variable.detach(), kept))
            if step == refinement.steps:
                break
            prior = sum(
                (v - s.detach()).square().flatten(1).mean(dim=1) for v, s in zip(variables, start) if s is not None
            )
            loss = (error + refinement.prior_weight * prior).sum()
            grads = torch.autograd.grad(loss, variables)  # the model's own parameters keep no gradient
            for variable, grad in zip(variables, grads):
                variable.grad = grad
            optimizer.step()
        return Latents(best[0], best[1] if len(best) > 1 else None)

    def _check_inputs(self, image: Tensor, mask: Tensor) -> None:
        """Shapes, dtypes and values of a user's ``image`` and ``mask``; reading values waits on the device."""
        self._check_shapes(image, mask)
        if not image.is_floating_point():
            raise ValueError(
                f"image must be floating point in [-1, 1], got {image.dtype}: convert uint8 images with "
                "hypersiren.core.pixels.to_model_space"
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
                "images with hypersiren.core.pixels.to_model_space"
            )

    def _check_shapes(self, image: Tensor, mask: Tensor) -> None:
        require_tensor(image, "image")
        require_tensor(mask, "mask")
        channels = self.config.image_channels
        if image.dim() != 4 or image.shape[1] != channels:
            raise ValueError(f"image must be (B, {channels}, H, W), got shape {tuple(image.shape)}")
        if image.numel() == 0:
            raise ValueError(f"image {tuple(image.shape)} holds no pixel: pass at least one image of at least 1x1")
        if (
            mask.dim() != 4
            or mask.shape[1] != 1
            or mask.shape[0] != image.shape[0]
            or mask.shape[2:] != image.shape[2:]
        ):
            raise ValueError(
                f"mask must be (B, 1, H, W) matching image {tuple(image.shape)}, got shape {tuple(mask.shape)}"
            )


def _render_size(size: tuple[int, int] | None, image: Tensor) -> tuple[int, int]:
    """``inpaint``'s ``size`` checked: None (the image's own) or two integers >= 1."""
    if size is None:
        return tuple(image.shape[-2:])
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(side, numbers.Integral) and not isinstance(side, bool) and side >= 1 for side in size)
    ):
        raise ValueError(f"size must be (height, width), two integers >= 1, got {size!r}: e.g. size=(64, 64)")
    return int(size[0]), int(size[1])


def sample_grid(grid: Tensor, coords: Tensor) -> Tensor:
    """Bilinear interpolation of ``grid (B, F, H, W)`` at ``coords (B, N, 2)`` (row, col in [-1, 1]) -> ``(B, N, F)``.

    ``align_corners=False`` is ``cell_centres``'s pixel-centre convention: at a pixel
    centre the code is exactly that cell's; beyond the outer centres the border code holds.
    """
    xy = coords.flip(-1).unsqueeze(2)  # grid_sample takes (x, y) = (col, row): (B, N, 1, 2)
    sampled = F.grid_sample(grid, xy, mode="bilinear", padding_mode="border", align_corners=False)  # (B, F, N, 1)
    return rearrange(sampled, "b f n 1 -> b n f")

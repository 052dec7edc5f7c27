"""HyperSiren: encoder -> decoder (hypernetwork -> functional SIREN by default), for signals of any dimension."""

import numbers
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from hypersiren.across.decoders import CellHead, SirenDecoder
from hypersiren.across.encoders import AVERAGE_POOLS, ConvEncoder, Latents, SetEncoder, UNetEncoder
from hypersiren.across.memory import inpaint_bytes, require_memory
from hypersiren.across.priors import GaussianPrior, principal_spectrum
from hypersiren.across.rules import MAX_SUPERSAMPLE, model_problems
from hypersiren.core.checks import require_tensor
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.render import SirenParams
from hypersiren.errors import ConfigError

if TYPE_CHECKING:
    from hypersiren.across.config import ModelConfig  # not at run time: config imports this module (parameter_count)

GRID_AXES = {1: "T", 2: "H, W", 3: "D, H, W"}  # how shapes are named in messages


class Prediction(NamedTuple):
    values: Tensor  # (B, N, C) in model space [-1, 1]
    latent: Tensor  # (B, L) global latent
    params: SirenParams  # the generated SIRENs, for the weight regularizer ([] for the cell head)


class HyperSiren(nn.Module):
    """Signals (any grid size, any observed subset) -> latent codes -> a decoder's values anywhere.

    A signal is ``(B, C, *S)`` on a grid ``S`` of ``config.dims`` dimensions (a series, an image, a volume),
    in [-1, 1], with a bool mask ``(B, 1, *S)`` of the observed points. Images are one such signal:
    "image" and "pixel" in names below mean any signal and its grid points.
    """

    def __init__(self, config: "ModelConfig", supersample: int = 1):
        problems = model_problems(config)
        if problems:
            raise ConfigError(f"invalid ModelConfig: {'; '.join(problems)}")  # a ValueError
        super().__init__()
        self.config = config
        # inpaint's default: run_model sets 2 for runs trained between pixel centres (train.fine_points), where
        # averaging over a pixel's area pays (README); elsewhere the function off the centres was never taught.
        self.supersample = supersample
        widths, dims = config.encoder_widths, config.dims
        if config.encoder == "unet":
            prior = None
            if config.prior_components:
                shape = (config.channels, *[config.prior_size] * dims)
                prior = GaussianPrior(shape, config.prior_components)
            self.encoder: nn.Module = UNetEncoder(
                config.channels,
                config.latent_dim,
                config.local_features,
                widths,
                dims=dims,
                prior=prior,
                bounded_codes=config.bounded_codes,
            )
        elif config.encoder == "conv":
            self.encoder = ConvEncoder(config.channels, config.latent_dim, widths, dims=dims)
        else:
            self.encoder = SetEncoder(dims, config.channels, config.latent_dim)
        if config.decoder == "pixel":
            self.decoder: nn.Module = CellHead(config.local_features, config.channels, dims=dims)
        else:
            local = config.local_features if config.encoder == "unet" else None
            self.decoder = SirenDecoder(
                config.siren, config.latent_dim, config.hyper_hidden_features, config.hyper_hidden_layers, local
            )

    @property
    def prior(self) -> GaussianPrior | None:
        """The Gaussian prior the model was trained with (``config.prior_components``), None without one: users see
        its completion beside the model's, at no cost (eval/inpaint.py, the demo)."""
        return getattr(self.encoder, "prior", None)

    def fit_prior(self, signals: Tensor) -> None:
        """Fit the encoder's Gaussian prior (``config.prior_components``) to the training split ``signals (N, C, *S)``
        in model space [-1, 1]: once, before the first step; checkpoints keep it with the weights."""
        prior = self.prior
        if prior is None:
            raise ValueError("this model has no prior to fit: set model.prior_components (unet encoder)")
        if tuple(signals.shape[1:]) != prior.shape:
            raise ValueError(
                f"the prior is of signals {prior.shape} (model.prior_size), the training split's are "
                f"{tuple(signals.shape[1:])}: set model.prior_size to data.image_size"
            )
        prior.set_spectrum(principal_spectrum(signals.to(prior.mean.device), prior.scales.numel()))

    def encode(self, image: Tensor, mask: Tensor) -> Latents:
        """``image (B, C, *S)`` in [-1, 1], ``mask (B, 1, *S)`` -> the latents of each signal.

        A floating-point signal of another dtype than the model's (float64, float16) is cast to it.
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

    def forward(self, image: Tensor, mask: Tensor, coords: Tensor) -> Prediction:
        """The raw prediction at ``coords (B, N, D)``: values ``(B, N, C)`` as decoded, observed points
        included (no pasting, no clamping: what the training loss sees), with the latent and SIREN params.

        The training step's path: it trusts its inputs (``data.training_batch`` makes them), because checking
        their values means waiting on the device every step. ``encode`` and ``inpaint`` check what users pass;
        shapes are still checked here, which costs no wait."""
        if coords.dim() == 3 and coords.shape[1] == 0:  # other shapes get render's message
            raise ValueError(f"coords {tuple(coords.shape)} hold no point (N = 0): pass at least one point per image")
        latents = self._encode(image, mask)
        decoded = self.decoder(latents, coords)
        return Prediction(decoded.values, latents.global_latent, decoded.params)

    def values(self, latents: Latents, coords: Tensor) -> Tensor:
        """The decoded values of ``latents`` at ``coords (B, N, D)`` -> ``(B, N, C)``."""
        return self.decoder(latents, coords).values

    @torch.no_grad()
    def inpaint(
        self,
        image: Tensor,
        mask: Tensor,
        size: tuple[int, ...] | None = None,
        chunk_size: int = 65536,
        raw: bool = False,
        supersample: int | None = None,
    ) -> Tensor:
        """Complete signals from the observed points: ``-> (B, C, *size)`` in [-1, 1].

        By default what a user wants: the observed points kept exactly as given (at the
        input's own size) and every value clamped to [-1, 1]. ``raw=True`` returns the
        rendering as it is, observed points re-rendered too (the "raw" row of evaluations).
        ``size`` (e.g. ``(H', W')``) renders the same continuous signal on another grid, ``chunk_size``
        points at a time so memory stays bounded. Each output cell is the mean of ``supersample`` points
        per axis spread over its extent (1: its centre only; default ``self.supersample``): a pixel of a
        photo is the scene averaged over its area, and only a function can be averaged so (+0.5 dB at 1000
        of 1024 pixels on held-out faces, README).
        A call whose estimated memory (``memory.inpaint_bytes``) exceeds the device's raises
        ``MemoryLimitError`` (a ValueError) before anything is computed.
        """
        size = _render_size(size, image, self.config.dims)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1 (points rendered at a time), got {chunk_size!r}")
        supersample = self.supersample if supersample is None else supersample
        if (
            isinstance(supersample, bool)
            or not isinstance(supersample, numbers.Integral)
            or not 1 <= supersample <= MAX_SUPERSAMPLE
        ):
            raise ValueError(
                f"supersample must be an integer in [1, {MAX_SUPERSAMPLE}] (1: pixel centres only; each step renders "
                f"supersample² points per pixel), got {supersample!r}"
            )
        self._check_inputs(image, mask)
        batch, grid = image.shape[0], tuple(image.shape[2:])
        require_memory(
            inpaint_bytes(self.config, batch, grid, size, chunk_size, supersample),
            device=image.device,
            what=f"inpainting {batch} signals of {_named(grid)} at {_named(size)}",
            fix="render a smaller size, or fewer signals (or chunk_size points) at a time",
        )
        latents = self._encode(image, mask)
        fine = tuple(supersample * side for side in size)
        coords = cell_centres(fine, image.device).expand(batch, -1, -1)
        values = torch.cat([self.values(latents, chunk) for chunk in coords.split(chunk_size, dim=1)], dim=1)
        completed = values.mT.reshape(batch, -1, *fine)  # (B, N, C) -> (B, C, *fine)
        if supersample > 1:
            completed = AVERAGE_POOLS[self.config.dims](completed, supersample)
        if raw:
            return completed
        if size == grid:
            completed = torch.where(mask.bool(), image, completed)
        return completed.clamp(-1.0, 1.0)

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
        channels, axes = self.config.channels, GRID_AXES[self.config.dims]
        if image.dim() != 2 + self.config.dims or image.shape[1] != channels:
            raise ValueError(f"image must be (B, {channels}, {axes}), got shape {tuple(image.shape)}")
        if image.numel() == 0:
            raise ValueError(
                f"image {tuple(image.shape)} holds no point: pass at least one signal of at least one point"
            )
        if (
            mask.dim() != image.dim()
            or mask.shape[1] != 1
            or mask.shape[0] != image.shape[0]
            or mask.shape[2:] != image.shape[2:]
        ):
            raise ValueError(
                f"mask must be (B, 1, {axes}) matching image {tuple(image.shape)}, got shape {tuple(mask.shape)}"
            )


def _render_size(size: tuple[int, ...] | None, image: Tensor, dims: int) -> tuple[int, ...]:
    """``inpaint``'s ``size`` checked: None (the signal's own grid) or ``dims`` integers >= 1."""
    if size is None:
        return tuple(image.shape[2:])
    if (
        not isinstance(size, tuple | list)
        or len(size) != dims
        or not all(isinstance(side, numbers.Integral) and not isinstance(side, bool) and side >= 1 for side in size)
    ):
        example = {1: "size=(512,)", 2: "size=(64, 64)", 3: "size=(32, 32, 32)"}[dims]
        raise ValueError(f"size must be ({GRID_AXES[dims]}), {dims} integers >= 1, got {size!r}: e.g. {example}")
    return tuple(int(side) for side in size)


def _named(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))

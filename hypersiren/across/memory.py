"""Memory estimates, checked before the first step: a run too large for the device is refused in one line.

The estimates are rough and err high. They count, per image and in fp32 (bf16 autocast only
lowers the truth), the tensors a step keeps alive at once:

- batch, per pixel: the images in float and the context masks' random ranks (two int64 argsorts);
- encoder, per input point: the pull-push fills and every U-Net (or CNN) stage's four
  activations and its skip and upsampled copies, at its resolution (a quarter per level for images);
- renderer, per rendered point: for training, each sine layer's input, per-point bias, pre-activation
  and output (what ``render._SineLayer`` saves for backward), the local code and its shifts; for
  inference, one layer's activations at a time and every layer's shifts;
- hypernetwork, per image: the generated SIREN's parameters, their fp32 copies and gradients;
- model state: weights, gradients and Adam's two moments (4 copies) when training.

Their sum is doubled (``SAFETY``) for what the count leaves out: gradient buffers, autograd's
temporaries, the allocator's caching. Decoded datasets are checked where they are loaded
(``data.load_images``). On the CPU and on Apple's MPS the limit is the machine's physical memory;
on CUDA the GPU's.
"""

import math
import os
from typing import TYPE_CHECKING

import torch

from hypersiren.errors import MemoryLimitError

if TYPE_CHECKING:
    from hypersiren.across.config import ModelConfig

BYTES = 4  # fp32
SAFETY = 2.0
GIB = 2**30


def physical_memory() -> int:
    """Bytes of this machine's memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_memory(device: str | torch.device) -> int:
    """Bytes of memory on ``device``: the GPU's for CUDA, the machine's otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return physical_memory()


def require_memory(needed: float, device: str | torch.device, what: str, fix: str) -> None:
    """``MemoryLimitError`` naming ``what``, the estimate and ``fix`` if ``needed`` bytes exceed ``device``'s memory."""
    available = device_memory(device)
    if needed > available:
        where = "GPU" if torch.device(device).type == "cuda" else "machine"
        raise MemoryLimitError(
            f"{what} needs about {needed / GIB:.1f} GiB (a rough, high estimate), more than this {where}'s "
            f"{available / GIB:.1f} GiB ({device}): {fix}"
        )


def training_bytes(config: "ModelConfig", batch_size: int, grid_points: int, points: int, parameters: int) -> float:
    """Estimated bytes of one training step: ``batch_size`` signals of ``grid_points`` points each (an image's
    pixels), ``points`` rendered per signal."""
    per_pixel = 4 * config.channels + 8 + _encoder_floats(config)  # the batch, then the encoder
    per_image = grid_points * per_pixel + points * _render_floats(config, training=True)
    per_image += 3 * _siren_parameters(config) if config.decoder == "siren" else 0
    return SAFETY * BYTES * (batch_size * per_image + 4 * parameters)


def inpaint_bytes(
    config: "ModelConfig",
    batch_size: int,
    grid: tuple[int, ...],
    size: tuple[int, ...],
    chunk_size: int,
    supersample: int = 1,
) -> float:
    """Estimated bytes of ``HyperSiren.inpaint`` on ``batch_size`` signals on ``grid`` (an image's (H, W)) rendered
    at ``size`` from ``supersample`` points per cell and axis: the encoder at the input's size, ``chunk_size``
    points rendered at a time, the rendered points, the completed signals and the points' grid."""
    points = math.prod(size) * supersample ** len(size)
    per_image = math.prod(grid) * _encoder_floats(config)
    per_image += min(chunk_size, points) * _render_floats(config, training=False) + 3 * config.channels * points
    return SAFETY * BYTES * (batch_size * per_image + 2 * points)


def _encoder_floats(config: "ModelConfig") -> float:
    """Floats per input point that the encoder keeps alive: every level's activations, 2^-dims as many per level
    down (a quarter for images)."""
    widths = config.encoder_widths
    fills = 12 * (config.channels + 1)  # the pull-push fills at 6 scales and their intermediates
    levels = sum(
        (4 * width + 2 * next_width + 5 * width) / 2 ** (config.dims * level)
        for level, (width, next_width) in enumerate(zip(widths, [*widths[1:], 0]))
    )
    point_net = 4 * config.latent_dim if config.encoder == "set" else 0
    return fills + levels + 2 * config.local_features + point_net


def _render_floats(config: "ModelConfig", training: bool) -> float:
    """Floats per rendered point: the SIREN's activations (or the pixel head's), local code, shifts and output."""
    hidden, sine_layers, channels = config.siren_hidden_features, config.siren_hidden_layers + 1, config.channels
    local = config.local_features if config.encoder == "unet" else 0
    if config.decoder == "pixel":
        return local + 4 * channels
    shifts = sine_layers * hidden + channels if local else 0
    activations = sine_layers * 4 * hidden if training else 2 * hidden
    return activations + local + shifts + 4 * channels


def _siren_parameters(config: "ModelConfig") -> int:
    """Parameters of one generated SIREN."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in config.siren.layer_shapes)

"""One training step on the device: forward, loss, backward, clip, and an update a non-finite step never makes.

The step never waits on the device: it reads no value back to the host. A non-finite loss or
gradient is caught on the device (``FiniteWatch``), its update skipped by the fused Adam kernel
itself, and the host learns of it at the next step it syncs anyway (a log, checkpoint or image
step), where training stops with the step it happened at. ``train/train.py`` and ``eval/bench.py``
take the same step, so the bench times what training runs.
"""

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from hypersiren.across.config import RunConfig, TrainConfig, parameter_count
from hypersiren.across.memory import require_memory, training_bytes
from hypersiren.across.objective import recipe_loss

if TYPE_CHECKING:
    from hypersiren.across.data import Batch


class Gradients(NamedTuple):
    """What one step's backward leaves besides the gradients themselves: all on the device, nothing read."""

    loss: Tensor  # () the configured objective
    terms: dict[str, Tensor]  # its detached terms, for the log
    grad_norm: Tensor  # () before clipping


def compute_gradients(
    model: Callable, parameters: list[Tensor], batch: "Batch", train: TrainConfig, precision: AbstractContextManager
) -> Gradients:
    """Forward ``batch`` through ``model`` (eager, compiled or DDP-wrapped) under ``precision``, take
    ``train``'s loss, backpropagate and clip ``parameters``' gradients to ``train.grad_clip``."""
    with precision:
        prediction = model(batch.image, batch.mask, batch.coords)
    loss, terms = recipe_loss(prediction, batch, train)
    for parameter in parameters:
        parameter.grad = None
    loss.backward()
    return Gradients(loss, terms, torch.nn.utils.clip_grad_norm_(parameters, train.grad_clip))


class FiniteWatch:
    """The first step whose loss or gradient norm was not finite, with both values, kept on the device.

    ``record`` is called every step and waits for nothing; ``first_failure`` reads the record (one
    sync) and is called only where the loop syncs anyway.
    """

    NONE = -1

    def __init__(self, device: torch.device):
        self.first_step = torch.full((), self.NONE, dtype=torch.long, device=device)
        self.values = torch.zeros(2, device=device)  # (loss, grad_norm) of that step

    def record(self, step: int, loss: Tensor, grad_norm: Tensor) -> Tensor:
        """Note step ``step``'s ``loss`` and ``grad_norm``; returns a float ``()``, 1 if the step is not finite:
        the ``found_inf`` that makes a fused optimizer skip the update on the device."""
        values = torch.stack([loss.detach().float(), grad_norm.detach().float()])
        failed = ~torch.isfinite(values).all()
        first = failed & (self.first_step == self.NONE)
        step_tensor = torch.full((), step, dtype=torch.long, device=self.first_step.device)  # a fill, not a copy
        self.first_step = torch.where(first, step_tensor, self.first_step)
        self.values = torch.where(first, values, self.values)
        return failed.float()

    def first_failure(self) -> tuple[int, float, float] | None:
        """``(step, loss, grad_norm)`` of the first non-finite step recorded, None if every step was finite."""
        step = int(self.first_step)
        if step == self.NONE:
            return None
        loss, grad_norm = self.values.tolist()
        return step, loss, grad_norm


def skip_if_failed(optimizer: torch.optim.Optimizer, failed: Tensor) -> None:
    """Make ``optimizer.step()`` a no-op on the device where ``failed`` (``FiniteWatch.record``) is 1.

    Fused Adam takes ``found_inf`` from the optimizer, as ``torch.amp.GradScaler`` passes it: where it is
    set the kernel leaves parameters, moments and step count as they were, with no host sync.
    """
    if not optimizer.defaults.get("fused"):
        raise ValueError("skip_if_failed needs a fused optimizer (torch.optim.Adam(..., fused=True))")
    optimizer.found_inf = failed


def precision(train: TrainConfig, device: torch.device) -> AbstractContextManager:
    """``train.amp``'s bf16 autocast on CUDA (the SIREN itself renders in fp32 regardless); nothing on the CPU."""
    return torch.autocast("cuda", torch.bfloat16) if train.amp and device.type == "cuda" else nullcontext()


def compiled(model: nn.Module, mode: str) -> Callable:
    """``model`` under ``torch.compile`` in ``mode`` (``train.compile``; "reduce-overhead" adds CUDA graphs), or as
    it is for "off". The compiled module shares the model's parameters: checkpoints save ``model`` itself."""
    return model if mode == "off" else torch.compile(model, mode=None if mode == "default" else mode)


def set_tf32(enabled: bool) -> None:
    """TF32 for fp32 matrix multiplies on CUDA (``train.tf32``); PyTorch already allows it in convolutions."""
    torch.backends.cuda.matmul.allow_tf32 = enabled


def require_step_memory(config: RunConfig, batch_size: int, device: str | torch.device, fix: str) -> None:
    """Refuse a training step of ``config`` on ``batch_size`` images that would not fit in ``device``'s memory
    (``memory.training_bytes``, a rough and high estimate), before anything is allocated; ``fix`` says what to lower."""
    grid = config.grid
    points = (config.train.query_points or math.prod(grid)) + config.train.fine_points
    require_memory(
        training_bytes(config.model, batch_size, math.prod(grid), points, parameters=parameter_count(config.model)),
        device=device,
        what=f"a training step of {batch_size} signals of {'x'.join(map(str, grid))} and {points} points each",
        fix=fix,
    )

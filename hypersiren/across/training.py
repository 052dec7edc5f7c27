"""One training step on the device: forward, loss, backward, clip, and an update a non-finite step never makes.

The step never waits on the device: it reads no value back to the host. A non-finite loss or
gradient is caught on the device (``FiniteWatch``), its update skipped by the fused Adam kernel
itself, and the host learns of it at the next step it syncs anyway (a log, checkpoint or image
step), where training stops with the step it happened at. ``train/train.py`` and ``eval/bench.py``
take the same step (``gradient_step``, then the update), so the bench times what training runs. Each
process of a torchrun starts on its own device (``process_device``, ``start_process``).
"""

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

from hypersiren.across.config import RunConfig, TrainConfig, parameter_count
from hypersiren.across.memory import require_memory, training_bytes
from hypersiren.across.objective import recipe_loss
from hypersiren.errors import ConfigError

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


def compiled(function: Callable, mode: str) -> Callable:
    """``function`` under ``torch.compile`` in ``mode`` (``train.compile``; "reduce-overhead" adds CUDA graphs), or
    as it is for "off"."""
    return function if mode == "off" else torch.compile(function, mode=None if mode == "default" else mode)


def gradient_step(
    model: Callable, optimizer: torch.optim.Optimizer, train: TrainConfig, watch: FiniteWatch
) -> Callable[["Batch", int], Gradients]:
    """``take(batch, step)``: training step ``step`` on ``batch`` up to the update, ``optimizer.step()``, which is
    the caller's (a checkpoint due saves the weights before it): ``compute_gradients`` through ``model`` (eager or
    DDP-wrapped), then ``watch`` told of the loss and gradient norm, which arms ``optimizer`` to skip a non-finite
    step on the device (``skip_if_failed``).

    Under DDP the loss and its terms are first averaged over the processes (one all-reduce): every rank logs the
    global batch's and all of them skip the same steps. Under ``train.compile`` all of it is one compiled function
    whose backward is one compiled graph; what stays eager is the batch's assembly, the autograd engine handing each
    parameter its gradient, and the fused update (torch does not trace into fused optimizers, and it is the one
    kernel that skips a step on the device). Compiled autograd, and compiling batch assembly too (its random draws
    cut it into a dozen graphs), launch fewer ops still, but each made the host's time per step longer on the CPU
    (docs/results.md, "The training step under train.compile").
    """
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    processes = dist.get_world_size() if dist.is_initialized() else 1
    device = watch.first_step.device

    def watched(batch: "Batch", step: int) -> tuple[Gradients, Tensor]:
        loss, terms, grad_norm = compute_gradients(model, parameters, batch, train, precision(train, device))
        if processes > 1:
            means = torch.stack([loss.detach(), *terms.values()])
            dist.all_reduce(means)
            means = means / processes
            loss, terms = means[0], dict(zip(terms, means[1:]))
        return Gradients(loss, terms, grad_norm), watch.record(step, loss, grad_norm)

    compiled_step = compiled(watched, mode=train.compile)

    def take(batch: "Batch", step: int) -> Gradients:
        gradients, failed = compiled_step(batch, step)
        skip_if_failed(optimizer, failed)  # outside: torch.compile drops attribute writes to an optimizer (2.14)
        return gradients

    return take


def process_device(device: str, local_rank: int | None) -> torch.device:
    """The device this process trains on: ``device`` (``--device``) for one process, ``cuda:N`` included; under
    torchrun (``local_rank``: its LOCAL_RANK, None for one process) a CUDA run's process takes ``cuda:LOCAL_RANK``,
    one GPU of its node each, so ``--device`` must name CUDA without an index there."""
    chosen = torch.device(device)
    if local_rank is None or chosen.type != "cuda":
        return chosen
    if chosen.index is not None:
        raise ConfigError(
            f"--device {device} under torchrun: each process trains on cuda:LOCAL_RANK of its node; "
            "give --device cuda (CUDA_VISIBLE_DEVICES chooses which GPUs a node lends)"
        )
    return torch.device("cuda", local_rank)


def start_process(device: torch.device, distributed: bool) -> None:
    """Make ``device`` (``process_device``) this process's current CUDA device, then, where ``distributed`` (under
    torchrun), start the process group bound to it: NCCL on CUDA, gloo on the CPU.

    In that order because NCCL's communicators and every CUDA context a process opens land on its current
    device: a rank that joined the group first would put them all on cuda:0 (memory there, and barriers that
    can hang). Binding the group to the device (``device_id``) also forms its communicator at once.
    """
    cuda = device.type == "cuda"
    if cuda and device.index is not None:
        torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)


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

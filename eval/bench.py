"""Benchmark hypersiren against the original hypernetwork design, at equal numerics (issue 3).

The reference is Sitzmann et al.'s hypernetwork re-implemented here: one ReLU MLP
per SIREN parameter tensor, and per-sample ``BatchLinear`` layers (``matmul`` with
weights ``(B, out, in)``, bias added, then ``sin(30 * x)``), fp32, eager, plain Adam.
It is built from a ``HyperSiren``'s weights so that both compute the same function
(every per-tensor trunk is a copy of the shared trunk, every per-tensor head is the
matching row block of the one big head), and the benchmark asserts that before it
times anything. Both share a copy of the same encoder.

Measured in one run: (a) training-step throughput, (b) inference throughput, (c) peak
memory of both, (d) time and memory of a 1024x1024 render through
``HyperSiren.inpaint`` for several chunk sizes, and (e) hypersiren's training
throughput fed by train/train.py's loader (real CelebA images) against the same step
on a batch already in memory. Timings interleave the contenders round by round and
take medians, so load from other processes hits all of them alike.

    OMP_NUM_THREADS=2 python eval/bench.py                    # CPU: ratios are indicative
    python eval/bench.py --device cuda --amp bf16 --compile   # the numbers that count
"""

import argparse
import copy
import dataclasses
import itertools
import json
import math
import os
import platform
import re
import statistics
import tempfile
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from hypersiren import HyperSiren, ModelConfig, Prediction, pixel_grid, training_context_mask
from hypersiren.cli import exits_cleanly
from hypersiren.config import RunConfig, TrainConfig, validate_model_config
from hypersiren.data import DataConfig, DatasetError, ShuffledBatches, command_line_root, load_images, training_batch
from hypersiren.losses import hypernetwork_loss

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRESETS = Path(__file__).resolve().parents[1] / "train"


@dataclass
class BenchConfig:
    device: str = "cpu"
    batch_size: int | None = None  # None: the paper's 32 on CPU, 100 on GPU
    image_size: int = 32
    amp: Literal["none", "bf16"] = "none"  # hypersiren only; its SIREN render stays fp32 regardless
    compile: bool = False  # torch.compile hypersiren's forward + loss (the reference stays eager)
    warmup: int = 2  # untimed calls per contender (allocator, oneDNN/cuBLAS caches, compilation)
    rounds: int = 9  # interleaved rounds; every figure is a median over them
    steps_per_round: int = 2  # training steps per contender per round
    inference_calls_per_round: int = 8  # an inference call is ~10x shorter than a step: more of them per sample
    memory_steps: int = 1  # calls, after the timed ones, over which transient memory is taken
    large_size: int = 1024
    chunk_sizes: list[int] = field(default_factory=lambda: [16384, 65536, 262144])
    large_repeats: int = 2
    workloads: list[str] = field(default_factory=lambda: ["train", "inference", "large_render", "data"])
    data_root: str = DataConfig.root  # CelebA for the data workload (a dataset folder as train/train.py takes it)
    data_images: int = 2048  # train images decoded for it: enough for 64 distinct batches of 32
    seed: int = 0
    out: str | None = None  # None: eval/results/bench_<device>.json

    def resolved_batch_size(self) -> int:
        return self.batch_size or (100 if torch.device(self.device).type == "cuda" else 32)


# ---------------------------------------------------------------- reference design


class ReferenceLayer(NamedTuple):
    """One generated layer in the reference's layout (that of nn.Linear / Sitzmann's BatchLinear)."""

    weight: Tensor  # (B, fan_out, fan_in)
    bias: Tensor  # (B, fan_out)


class ReferenceHyperNetwork(nn.Module):
    """Sitzmann et al.'s hypernetwork: an independent ReLU MLP per SIREN parameter tensor.

    Each MLP is ``latent -> hidden -> ... -> numel`` (an FCBlock with a linear last
    layer); its output is reshaped to the tensor, weights as ``(out, in)``.
    """

    def __init__(self, trunk: nn.Sequential, shapes: list[tuple[int, ...]]):
        super().__init__()
        width = trunk[-2].out_features  # trunk ends with Linear, ReLU
        self.shapes = shapes  # alternating weight (out, in) and bias (out,)
        self.nets = nn.ModuleList(
            nn.Sequential(*copy.deepcopy(trunk), nn.Linear(width, math.prod(shape))) for shape in shapes
        )

    def forward(self, latent: Tensor) -> list[ReferenceLayer]:
        batch = latent.shape[0]
        tensors = [net(latent).view(batch, *shape) for net, shape in zip(self.nets, self.shapes)]
        return [ReferenceLayer(weight, bias) for weight, bias in zip(tensors[0::2], tensors[1::2])]


def reference_render(params: list[ReferenceLayer], coords: Tensor, omega: float = 30.0) -> Tensor:
    """Sitzmann's BatchLinear + Sine: ``coords (B, N, D_in) -> (B, N, D_out)``, omega on activations."""
    hidden = coords
    last = len(params) - 1
    for index, (weight, bias) in enumerate(params):
        hidden = hidden.matmul(weight.permute(0, 2, 1))  # (B, N, in) @ (B, in, out)
        hidden += bias.unsqueeze(-2)  # in place, as BatchLinear does
        if index != last:
            hidden = torch.sin(omega * hidden)
    return hidden


class ReferenceModel(nn.Module):
    """Encoder -> per-tensor hypernetwork -> BatchLinear SIREN, the original design end to end."""

    def __init__(self, encoder: nn.Module, hypernet: ReferenceHyperNetwork, omega: float):
        super().__init__()
        self.encoder = encoder
        self.hypernet = hypernet
        self.omega = omega

    def forward(self, image: Tensor, mask: Tensor, coords: Tensor) -> Prediction:
        latent = self.encoder(image, mask)
        params = self.hypernet(latent)
        # hypernetwork_loss's weight L2 is a sum over all generated values, so the (out, in)
        # layout gives the same loss; nothing else reads these params.
        return Prediction(reference_render(params, coords, self.omega), latent, params)


@torch.no_grad()
def build_reference(model: HyperSiren) -> ReferenceModel:
    """The original design computing exactly ``model``'s function, from a copy of its weights.

    Shared trunk -> copied into every per-tensor MLP; big head -> split into its row
    blocks, weight blocks reordered from hypersiren's ``(in, out)`` to ``(out, in)``.
    """
    if model.config.encoder != "conv":
        raise ValueError("the benchmark compares the conv-encoder model (the paper config)")
    hypernet = model.hypernet
    shapes: list[tuple[int, ...]] = []
    for (fan_in, fan_out), bias_shape in hypernet.shapes:
        shapes += [(fan_out, fan_in), bias_shape]
    reference = ReferenceHyperNetwork(hypernet.trunk, shapes)
    head_weights = torch.split(hypernet.head.weight, hypernet.sizes)  # (numel, hidden) each
    head_biases = torch.split(hypernet.head.bias, hypernet.sizes)
    for net, shape, weight, bias in zip(reference.nets, shapes, head_weights, head_biases):
        if len(shape) == 2:  # a SIREN weight: hypersiren's rows enumerate (in, out), ours (out, in)
            fan_out, fan_in = shape
            weight = rearrange(weight, "(i o) h -> (o i) h", i=fan_in, o=fan_out)
            bias = rearrange(bias, "(i o) -> (o i)", i=fan_in, o=fan_out)
        net[-1].weight.copy_(weight)
        net[-1].bias.copy_(bias)
    return ReferenceModel(copy.deepcopy(model.encoder), reference, model.config.omega).to(hypernet.head.weight.device)


# ---------------------------------------------------------------- workload


class Batch(NamedTuple):
    image: Tensor  # (B, C, H, W) in [-1, 1]
    mask: Tensor  # (B, 1, H, W) bool, 10..H*W observed pixels each (cost does not depend on it)
    coords: Tensor  # (B, H*W, 2): every pixel is supervised
    target: Tensor  # (B, H*W, C)


def make_batch(
    config: ModelConfig, batch_size: int, size: int, device: torch.device | str, seed: int = 0
) -> Batch:
    """A synthetic training batch: throughput does not depend on pixel values."""
    generator = torch.Generator().manual_seed(seed)
    image = 2 * torch.rand(batch_size, config.image_channels, size, size, generator=generator) - 1
    mask = training_context_mask(batch_size, size, size, min(10, size * size), size * size, generator=generator)
    coords = pixel_grid(size, size).expand(batch_size, -1, -1)
    target = rearrange(image, "b c h w -> b (h w) c")
    return Batch(*(tensor.to(device) for tensor in (image, mask, coords, target)))


def build_models(config: ModelConfig, device: torch.device | str, seed: int) -> tuple[HyperSiren, ReferenceModel]:
    torch.manual_seed(seed)
    model = HyperSiren(config).to(device)
    return model, build_reference(model)


def batch_loss(model: nn.Module, batch: Batch) -> Tensor:
    prediction = model(batch.image, batch.mask, batch.coords)
    return hypernetwork_loss(prediction, batch.target)[0]


class NumericsCheck(NamedTuple):
    hypersiren_loss: float
    reference_loss: float
    max_encoder_grad_error: float  # max over encoder tensors of |g_hs - g_ref| / |g_ref|


def compare_numerics(model: HyperSiren, reference: ReferenceModel, batch: Batch) -> NumericsCheck:
    """Loss and encoder gradient of both models on one batch (fp32, eager)."""
    results = []
    for candidate in (model, reference):
        loss = batch_loss(candidate, batch)
        grads = torch.autograd.grad(loss, list(candidate.encoder.parameters()))
        results.append((loss.detach(), grads))
    (loss_hs, grads_hs), (loss_ref, grads_ref) = results
    errors = [float((g - r).norm() / r.norm().clamp_min(1e-30)) for g, r in zip(grads_hs, grads_ref)]
    return NumericsCheck(float(loss_hs), float(loss_ref), max(errors))


def assert_equal_numerics(check: NumericsCheck, rtol: float = 1e-4, grad_rtol: float = 1e-3) -> None:
    """Raise unless both designs computed the same loss and encoder gradient."""
    loss_error = abs(check.hypersiren_loss - check.reference_loss) / abs(check.reference_loss)
    if loss_error > rtol:
        raise AssertionError(f"losses differ: {check.hypersiren_loss} vs {check.reference_loss} (rel {loss_error:.2e})")
    if check.max_encoder_grad_error > grad_rtol:
        raise AssertionError(f"encoder gradients differ: relative error {check.max_encoder_grad_error:.2e}")


# ---------------------------------------------------------------- contenders

WORKLOADS = ("train", "inference", "large_render", "data")
DESIGNS = {
    "train": ("hypersiren", "reference", "hypersiren_plain_adam"),
    "inference": ("hypersiren", "reference"),
}


def autocast(device: torch.device, amp: str) -> AbstractContextManager:
    """bf16 autocast for encoder + hypernet; ``HyperSiren.render`` keeps the SIREN in fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16" else nullcontext()


def make_forward_loss(model: nn.Module, amp: str = "none", compile: bool = False) -> Callable[[Batch], Tensor]:
    """encoder -> hypernet -> render -> hypernetwork_loss, optionally under bf16 autocast / torch.compile."""

    def forward_loss(image: Tensor, mask: Tensor, coords: Tensor, target: Tensor) -> Tensor:
        with autocast(image.device, amp):
            return batch_loss(model, Batch(image, mask, coords, target))

    compiled = torch.compile(forward_loss) if compile else forward_loss
    return lambda batch: compiled(*batch)


def make_step_on(
    model: nn.Module, optimizer: torch.optim.Optimizer, amp: str = "none", compile: bool = False
) -> Callable[[Batch], None]:
    """One training step on a given batch: forward_loss -> backward -> optimizer step."""
    forward_loss = make_forward_loss(model, amp, compile)

    def step(batch: Batch) -> None:
        forward_loss(batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # last, not first: between steps no gradient is held

    return step


def make_train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, amp: str = "none", compile: bool = False
) -> Callable[[], None]:
    """One training step, always on ``batch``."""
    return partial(make_step_on(model, optimizer, amp, compile), batch)


def make_inference(model: nn.Module, batch: Batch, amp: str = "none", compile: bool = False) -> Callable[[], None]:
    """Complete a batch of images without gradients: encoder -> hypernet -> render."""

    def infer(image: Tensor, mask: Tensor, coords: Tensor) -> Tensor:
        with autocast(image.device, amp):
            return model(image, mask, coords).values

    compiled = torch.compile(infer) if compile else infer

    def run() -> None:
        with torch.inference_mode():
            compiled(batch.image, batch.mask, batch.coords)

    return run


def make_contender(
    design: str, workload: str, model: HyperSiren, reference: ReferenceModel, batch: Batch, bench: BenchConfig
) -> Callable[[], None]:
    """The timed call of one design: the reference is always fp32 eager with plain Adam."""
    if design == "reference":
        if workload == "train":
            return make_train_step(reference, torch.optim.Adam(reference.parameters()), batch)
        return make_inference(reference, batch)
    if workload == "inference":
        return make_inference(model, batch, bench.amp, bench.compile)
    if design == "hypersiren":
        optimizer = torch.optim.Adam(model.parameters(), fused=True)  # what train/train.py uses
    else:  # hypersiren_plain_adam: separates the model's gain from the optimizer's
        model = copy.deepcopy(model)
        optimizer = torch.optim.Adam(model.parameters())
    return make_train_step(model, optimizer, batch, bench.amp, bench.compile)


# ---------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    contenders: dict[str, Callable[[], None]], device: torch.device, warmup: int, rounds: int, calls: int
) -> dict[str, list[float]]:
    """Seconds per call of each contender, one sample per round.

    Contenders take turns within every round (order reversed on odd rounds), so a
    burst of load from another process lands on all of them rather than on one.
    """
    for run in contenders.values():
        for _ in range(warmup):
            run()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(rounds):
        for name in list(contenders)[:: 1 if round_index % 2 == 0 else -1]:
            start = time.perf_counter()
            for _ in range(calls):
                contenders[name]()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / calls)
    return samples


def throughput(times: list[float], batch_size: int) -> dict[str, Any]:
    """Median seconds per call, images/s, and the samples behind them."""
    seconds = statistics.median(times)
    return {"seconds_per_call": seconds, "images_per_s": batch_size / seconds, "samples_s": times}


def paired_ratio(faster: list[float], slower: list[float]) -> float:
    """Median over rounds of slower/faster time: a throughput ratio robust to load drift."""
    return statistics.median(s / f for f, s in zip(faster, slower))


# ---------------------------------------------------------------- peak memory
#
# peak = static + transient. static: the tensors that live from step to step, counted
# exactly from the parameter count (fp32 weights; for training also Adam's two
# moments). transient: the most bytes of tensors allocated during one call and alive
# at the same time (gradients, activations, temporaries), measured on warmed-up
# contenders right after their timing: on CUDA by the caching allocator
# (max_memory_allocated after a reset, minus memory_allocated then), on CPU by the
# profiler's record of every allocation and free of the CPU allocator. Both count
# tensors, not allocator slack: process RSS can be higher (glibc keeps freed heap
# blocks below its 32 MiB mmap threshold), which depends on the allocator, not the design.


def static_bytes(num_parameters: int, workload: str) -> int:
    """fp32 weights, plus Adam's exp_avg and exp_avg_sq when training."""
    return 4 * num_parameters * (3 if workload == "train" else 1)


@contextmanager
def transient_peak(device: torch.device) -> Iterator[dict[str, Any]]:
    """Yields a dict that receives ``bytes``, the peak tensor memory allocated inside the block, and ``method``."""
    result: dict[str, Any] = {}
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        yield result
        synchronize(device)
        result.update(bytes=torch.cuda.max_memory_allocated(device) - baseline, method="cuda_max_memory_allocated")
        return
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        yield result
    result.update(bytes=_profiled_peak_bytes(profiler), method="cpu_profiler_allocations")


def _profiled_peak_bytes(profiler: torch.profiler.profile) -> int:
    """Largest running sum of the profiled allocations (+) and frees (-): blocks alive together, at most."""
    with tempfile.TemporaryDirectory() as folder:
        trace_path = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(trace_path))
        events = json.loads(trace_path.read_text())["traceEvents"]
    memory = [event for event in events if event.get("name") == "[memory]"]
    memory.sort(key=lambda event: (event["ts"], event["args"].get("Ev Idx", 0)))
    live = peak = 0
    for event in memory:
        live += event["args"]["Bytes"]
        peak = max(peak, live)
    return peak


def measure_transient(run: Callable[[], None], device: torch.device, calls: int) -> dict[str, Any]:
    """``transient_peak`` of ``calls`` calls of an already warmed-up ``run``."""
    with transient_peak(device) as peak:
        for _ in range(calls):
            run()
    return peak


# ---------------------------------------------------------------- the benchmark


def run_benchmark(bench: BenchConfig, model_config: ModelConfig) -> dict[str, Any]:
    unknown = set(bench.workloads) - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown workloads {sorted(unknown)}: choose from {WORKLOADS}")
    device = torch.device(bench.device)
    batch_size = bench.resolved_batch_size()
    if "data" in bench.workloads:  # first: a missing dataset should fail before minutes of timing
        data = DataConfig(root=bench.data_root, image_size=bench.image_size)
        train_images = load_images(data, "train", limit=bench.data_images).to(device)
    model, reference = build_models(model_config, device, bench.seed)
    batch = make_batch(model_config, batch_size, bench.image_size, device, bench.seed)

    check = compare_numerics(model, reference, batch)
    assert_equal_numerics(check)
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {
        "environment": _environment(device),
        "bench_config": dataclasses.asdict(bench) | {"batch_size": batch_size},
        "model_config": dataclasses.asdict(model_config),
        "parameters": {
            "hypersiren": sum(p.numel() for p in model.parameters()),
            "reference": sum(p.numel() for p in reference.parameters()),
        },
        "numerics": check._asdict(),
    }
    if bench.amp != "none" or bench.compile:
        with torch.no_grad():
            loss = float(make_forward_loss(model, bench.amp, bench.compile)(batch))
        if not math.isfinite(loss) or (bench.amp == "none" and abs(loss / check.hypersiren_loss - 1) > 1e-3):
            raise AssertionError(f"hypersiren with amp={bench.amp} compile={bench.compile}: loss {loss}")
        results["numerics"]["hypersiren_loss_as_timed"] = loss

    for workload in (w for w in ("train", "inference") if w in bench.workloads):
        contenders = {
            design: make_contender(design, workload, model, reference, batch, bench) for design in DESIGNS[workload]
        }
        if workload == "train":  # the default preset's local-latent model, on the same batch size
            torch.manual_seed(bench.seed)
            local = HyperSiren(RunConfig.load(PRESETS / "default.toml").model).to(device)
            local_batch = make_batch(local.config, batch_size, bench.image_size, device, bench.seed)
            optimizer = torch.optim.Adam(local.parameters(), fused=True)
            contenders["default_preset"] = make_train_step(local, optimizer, local_batch, bench.amp, bench.compile)
        calls = bench.steps_per_round if workload == "train" else bench.inference_calls_per_round
        samples = time_interleaved(contenders, device, bench.warmup, bench.rounds, calls)
        figures: dict[str, Any] = {design: throughput(times, batch_size) for design, times in samples.items()}
        figures["throughput_ratio"] = paired_ratio(samples["hypersiren"], samples["reference"])
        if workload == "train":
            plain = samples["hypersiren_plain_adam"]
            figures["plain_adam_throughput_ratio"] = paired_ratio(plain, samples["reference"])
            figures["fused_over_plain_adam"] = paired_ratio(samples["hypersiren"], plain)
            figures["default_preset_over_paper"] = paired_ratio(samples["default_preset"], samples["hypersiren"])
        memory: dict[str, Any] = {}
        for design in ("hypersiren", "reference"):
            transient = measure_transient(contenders[design], device, bench.memory_steps)
            static = static_bytes(results["parameters"][design], workload)
            memory[design] = {
                "peak_bytes": static + transient["bytes"],
                "static_bytes": static,
                "transient_bytes": transient["bytes"],
                "method": transient["method"],
            }
        memory["ratio"] = memory["hypersiren"]["peak_bytes"] / memory["reference"]["peak_bytes"]
        memory["transient_ratio"] = memory["hypersiren"]["transient_bytes"] / memory["reference"]["transient_bytes"]
        figures["memory"] = memory
        results[workload] = figures

    if "large_render" in bench.workloads:
        results["large_render"] = _large_render(model, bench, model_config, device)
    if "data" in bench.workloads:
        results["data"] = _data_pipeline(model, train_images, bench, batch_size)
    results["environment"]["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    return results


def _large_render(
    model: HyperSiren, bench: BenchConfig, model_config: ModelConfig, device: torch.device
) -> list[dict[str, Any]]:
    """One image rendered at large_size² from its latent, chunk by chunk: memory follows the chunk."""
    batch = make_batch(model_config, 1, bench.image_size, device, bench.seed)
    rows = []
    for chunk_size in bench.chunk_sizes:
        size = (bench.large_size, bench.large_size)
        render = partial(model.inpaint, batch.image, batch.mask, size=size, chunk_size=chunk_size)
        seconds = time_interleaved({"render": render}, device, 1, bench.large_repeats, 1)["render"]
        rows.append(
            {
                "chunk_size": chunk_size,
                "seconds": statistics.median(seconds),
                "samples_s": seconds,
                "transient_memory": measure_transient(render, device, 1),
            }
        )
    return rows


def _data_pipeline(model: HyperSiren, images: Tensor, bench: BenchConfig, batch_size: int) -> dict[str, Any]:
    """hypersiren's training step fed by train/train.py's loader vs by one batch already in memory.

    The loader is ``training_batch`` over the decoded uint8 split, as in train/train.py:
    a random batch (gather, convert) and its random context masks, fresh every step.
    """
    train = TrainConfig()
    batches = ShuffledBatches(len(images), batch_size, train.seed)
    size = images.shape[-1]
    coords = pixel_grid(size, size, images.device).expand(batch_size, -1, -1)

    def load(step: int) -> Batch:
        image, mask = training_batch(images, batches, step, train.min_context, min(train.max_context, size * size))
        return Batch(image, mask, coords, rearrange(image, "b c h w -> b (h w) c"))

    step_on = make_step_on(model, torch.optim.Adam(model.parameters(), fused=True), bench.amp, bench.compile)
    in_memory, steps = load(0), itertools.count()
    contenders = {"real_loader": lambda: step_on(load(next(steps))), "in_memory": lambda: step_on(in_memory)}
    samples = time_interleaved(contenders, images.device, bench.warmup, bench.rounds, bench.steps_per_round)
    loading = time_interleaved({"load": lambda: load(next(steps))}, images.device, 2, bench.rounds, 20)["load"]
    figures = {name: throughput(times, batch_size) for name, times in samples.items()}
    load_seconds = statistics.median(loading)
    return {
        "images": len(images),
        **figures,
        "throughput_ratio": paired_ratio(samples["real_loader"], samples["in_memory"]),
        "load_seconds_per_batch": load_seconds,
        "load_share_of_step": load_seconds / figures["in_memory"]["seconds_per_call"],
    }


def _environment(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE) if cpuinfo.exists() else None
        name = found.group(1) if found else platform.processor() or platform.machine()
    return {
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def format_report(results: dict[str, Any]) -> str:
    """The printed table. On CPU: rates and ratios, labelled indicative; absolute times only on GPU."""
    env, bench, model = results["environment"], results["bench_config"], results["model_config"]
    on_gpu = env["device"].startswith("cuda")
    mib = 1024**2
    where = env["device_name"] if on_gpu else f"CPU ({env['device_name']}, torch threads {env['threads']}): indicative"
    options = f"amp={bench['amp']}" + (" compile" if bench["compile"] else "")
    numerics = results["numerics"]
    lines = [
        f"hypersiren vs reference (per-tensor MLP hypernetwork + BatchLinear SIREN) -- {where}",
        f"SIREN {model['siren_hidden_features']}x{model['siren_hidden_layers']}, latent {model['latent_dim']}, "
        f"hypernet {model['hyper_hidden_features']}x{model['hyper_hidden_layers']}, encoder {model['encoder_widths']}, "
        f"omega {model['omega']}, batch {bench['batch_size']} of {bench['image_size']}x{bench['image_size']}",
        f"hypersiren: {options}, fused Adam; reference: fp32 eager, plain Adam",
        f"equal numerics: loss {numerics['hypersiren_loss']:.6f} vs {numerics['reference_loss']:.6f}, "
        f"encoder gradient rel. error {numerics['max_encoder_grad_error']:.1e}",
    ]
    if "train" in results or "inference" in results:
        lines += ["", f"{'':<40}{'hypersiren':>12}{'reference':>12}{'hs/ref':>9}"]

    def row(label: str, hypersiren: float, reference: float, ratio: float | None = None, digits: int = 1) -> str:
        ratio_text = f"{ratio:>8.2f}x" if ratio is not None else ""
        return f"{label:<40}{hypersiren:>12.{digits}f}{reference:>12.{digits}f}{ratio_text}"

    throughput_labels = {"train": "(a) training step, images/s", "inference": "(b) inference (no grad), images/s"}
    for workload, label in throughput_labels.items():
        if workload not in results:
            continue
        figures = results[workload]
        hs, ref = figures["hypersiren"], figures["reference"]
        lines.append(row(label, hs["images_per_s"], ref["images_per_s"], figures["throughput_ratio"]))
        if on_gpu:
            lines.append(row("    ms per call", 1e3 * hs["seconds_per_call"], 1e3 * ref["seconds_per_call"], digits=2))
        if workload == "train":
            plain = figures["hypersiren_plain_adam"]["images_per_s"]
            plain_ratio = figures["plain_adam_throughput_ratio"]
            lines.append(
                row("    hypersiren with plain Adam", plain, ref["images_per_s"], plain_ratio)
                + f"  (fused/plain Adam: {figures['fused_over_plain_adam']:.2f}x)"
            )
            local = figures["default_preset"]["images_per_s"]
            lines.append(
                f"{'    default preset (local latents)':<40}{local:>12.1f}{'':>12}"
                f"  ({figures['default_preset_over_paper']:.2f}x the paper-sized hypersiren above)"
            )
    memory_labels = {"train": "(c) training peak memory, MiB", "inference": "(c) inference peak memory, MiB"}
    for workload, label in memory_labels.items():
        if workload in results:
            memory = results[workload]["memory"]
            hs, ref = memory["hypersiren"], memory["reference"]
            lines.append(row(label, hs["peak_bytes"] / mib, ref["peak_bytes"] / mib, memory["ratio"], digits=0))
            transient = (hs["transient_bytes"] / mib, ref["transient_bytes"] / mib, memory["transient_ratio"])
            lines.append(row("    of which transient", *transient, digits=0))
    if "large_render" in results:
        size = bench["large_size"]
        lines += ["", f"(d) {size}x{size} render via HyperSiren.inpaint" + ("" if on_gpu else " (CPU, indicative)")]
        lines.append(f"{'chunk_size':>12}{'seconds':>10}{'transient MiB':>15}")
        for render in results["large_render"]:
            transient = render["transient_memory"]["bytes"] / mib
            lines.append(f"{render['chunk_size']:>12}{render['seconds']:>10.2f}{transient:>15.0f}")
    if "data" in results:
        data = results["data"]
        lines += [
            "",
            f"(e) data pipeline ({data['images']} CelebA train images, train/train.py's loader)",
            f"    training throughput, real loader / batch in memory: {data['throughput_ratio']:.2f}x"
            f"  (loading a batch = {100 * data['load_share_of_step']:.1f}% of a step)",
        ]
    lines += [
        "",
        "peak memory = static (weights; + Adam moments when training) + transient (gradients, activations and",
        "temporaries of one warmed-up call: tensors alive together, from "
        + ("the CUDA allocator" if on_gpu else "the profiler's CPU allocation record")
        + ").",
        "ratios: median over interleaved rounds of the paired time ratio.",
    ]
    if not on_gpu:
        load = env["load_average"]
        load_text = f"{load['before']:.1f}/{load['after']:.1f}"
        lines.append(f"load average (1 min) before/after: {load_text} on {os.cpu_count()} CPUs (others' jobs included)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple[BenchConfig, ModelConfig]:
    """Every BenchConfig and ModelConfig field is a flag: ``--batch-size 8``, ``--siren-hidden-features 64``.

    The model defaults are train/paper.toml's: the design the reference re-implements.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    paper_model = dataclasses.asdict(RunConfig.load(PRESETS / "paper.toml").model)
    for config_class in (BenchConfig, ModelConfig):
        group = parser.add_argument_group(config_class.__name__)
        for config_field in dataclasses.fields(config_class):
            flag = "--" + config_field.name.replace("_", "-")
            default = (
                config_field.default_factory() if config_field.default is dataclasses.MISSING else config_field.default
            )
            if config_class is ModelConfig:
                default = paper_model[config_field.name]
            if isinstance(default, bool):
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
            elif isinstance(default, list):
                group.add_argument(flag, type=type(default[0]), nargs="+", default=default)
            else:
                kind = int if config_field.name == "batch_size" else str if default is None else type(default)
                literal = typing.get_origin(config_field.type) is Literal
                choices = typing.get_args(config_field.type) if literal else None
                group.add_argument(flag, type=kind, default=default, choices=choices)
    args = vars(parser.parse_args(argv))
    bench = BenchConfig(**{f.name: args[f.name] for f in dataclasses.fields(BenchConfig)})
    model = ModelConfig(**{f.name: args[f.name] for f in dataclasses.fields(ModelConfig)})
    if bench.data_root != DataConfig.root:  # typed on the command line: relative to the working directory
        bench.data_root = command_line_root(bench.data_root)
    validate_model_config(model)
    return bench, model


@exits_cleanly()
def main(argv: list[str] | None = None) -> None:
    bench, model_config = parse_args(argv)
    if torch.device(bench.device).type == "cuda":
        torch.backends.fp32_precision = "ieee"  # no TF32: fp32 means fp32 on both sides
    try:
        results = run_benchmark(bench, model_config)
    except DatasetError as error:
        others = " ".join(w for w in WORKLOADS if w != "data")
        raise DatasetError(f"{error}; the data workload needs it: skip it with --workloads {others}") from error
    print(format_report(results))
    out = Path(bench.out) if bench.out else RESULTS_DIR / f"bench_{torch.device(bench.device).type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()

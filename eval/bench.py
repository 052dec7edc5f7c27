"""Speed of hypersiren's training step and inference, each figure a ratio against a contender timed in the same run.

- Reference: the paper's hypernetwork design written here (one ReLU MLP per SIREN tensor,
  per-sample ``matmul`` layers with ``sin(30·x)``, plain Adam), built from hypersiren's own
  weights so that both compute the same function; the benchmark asserts equal loss and
  encoder gradients first. Both share hypersiren's encoder: the ratio is the hypernetwork
  and the rendering, not end to end.
- Ablations: every speed trick of the rendering (and the U-Net's upsampling on CUDA) is switched off
  in turn (each computes the same numbers, also asserted), so each row is what that trick
  alone buys on the training step; a trick that buys under 5% has no place in the code.
- Sizes: the whole training step of the 32x32 default, celeba64 and celeba128 presets (batch
  assembly included, on random images), as cost per image against the default; and celeba64
  with every pixel rendered, and with the default's encoder widths, the two measures that
  keep its cost near the default's; and the default with a Gaussian prior (``model.prior_components``: its cost).
- Modes: the default and celeba64 training steps eager and under ``torch.compile`` (on CUDA also
  bf16 autocast, TF32 and CUDA graphs), each as a speed-up on eager fp32: ``train.compile``,
  ``train.amp`` and ``train.tf32`` stay in a preset only where their row pays.
- Machine: the fp32 GEMM rate of this device, and the fraction of it the training step
  reaches (its matmul FLOPs counted by ``torch.utils.flop_counter``).

Contenders take turns within every round and each ratio is the median of the per-round
ratios, so load from other processes lands on all of them alike.

    OMP_NUM_THREADS=2 python eval/bench.py          # CPU: ratios only, absolute rates indicative
    python eval/bench.py --device cuda --batch-size 100
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.cli import exits_cleanly, int_in, parse_before_imports, program


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    parser.add_argument(
        "--batch-size", type=int_in(1, 1024), default=32, help="images per step (the paper's CPU figure is 32)"
    )
    parser.add_argument(
        "--rounds", type=int_in(1), default=9, help="interleaved rounds; every figure is a median over them"
    )
    parser.add_argument(
        "--gemm-size", type=int_in(1, 16384), default=2048, help="side of the fp32 GEMM that rates the machine"
    )
    parser.add_argument("--out", default=None, help="JSON file (default eval/results/bench_<device>.json)")
    parser.add_argument(
        "--replace", action="store_true", help="replace --out even if it holds a benchmark of another setup"
    )
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

import copy
import itertools
import math
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple
from unittest import mock

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from hypersiren.across import encoders as encoders_module
from hypersiren.across.config import ModelConfig, RunConfig
from hypersiren.across.context import training_context_mask
from hypersiren.across.data import ShuffledBatches, recipe_batch
from hypersiren.across.model import HyperSiren, Prediction
from hypersiren.across.objective import hypernetwork_loss
from hypersiren.across.training import (
    FiniteWatch,
    gradient_step,
    require_step_memory,
    set_tf32,
)
from hypersiren.core import render as render_module
from hypersiren.core.coordinates import cell_centres
from hypersiren.errors import ConfigError
from hypersiren.results import earlier_result, markdown_table, require_writable, write_json

PRESETS = Path(__file__).resolve().parents[1] / "train"
RESULTS = Path(__file__).resolve().parent / "results"
SPEEDUP = "hypersiren is faster by"
SIZE_PRESETS = ("default", "celeba64", "celeba128")
COST = "cost per image vs default"


# ---------------------------------------------------------------- the tricks, and their plain replacements


def _plain_sine_layer(hidden: Tensor, weight: Tensor, bias: Tensor, omega: float) -> Tensor:
    return torch.sin(torch.baddbmm(bias, hidden, weight, beta=omega, alpha=omega))


def _plain_upsample(features: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(features, size=tuple(size), mode="bilinear", align_corners=False)


TRICKS: dict[str, tuple[object, str, object]] = {  # name: (module, attribute, what stands in for it when off)
    "custom sine layer": (render_module, "_SineLayer", SimpleNamespace(apply=_plain_sine_layer)),
    "chunked in-place cos": (render_module, "_mul_cos_", lambda grad, pre: grad * torch.cos(pre)),
    "omega inside the GEMM": (render_module, "_scaled_bmm", lambda left, right, scale: scale * left @ right),
    "2x upsampling by slices (CUDA)": (encoders_module, "upsample", _plain_upsample),
}


@contextmanager
def without(*tricks: str):
    """Run with the named tricks replaced by the plain code they stand for."""
    with ExitStack() as stack:
        for name in tricks:
            module, attribute, plain = TRICKS[name]
            stack.enter_context(mock.patch.object(module, attribute, plain))
        yield


# ---------------------------------------------------------------- the reference design


class ReferenceModel(nn.Module):
    """Encoder -> one ReLU MLP per SIREN tensor -> per-sample ``BatchLinear`` + ``sin(omega·x)`` layers."""

    def __init__(self, model: HyperSiren):
        super().__init__()
        hypernet, self.omega = model.decoder.hypernet, model.config.omega
        self.encoder = copy.deepcopy(model.encoder)
        self.shapes = [shape for (fan_in, fan_out), bias in hypernet.shapes for shape in ((fan_out, fan_in), bias)]
        self.nets = nn.ModuleList()
        heads = zip(torch.split(hypernet.head.weight, hypernet.sizes), torch.split(hypernet.head.bias, hypernet.sizes))
        for shape, (weight, bias) in zip(self.shapes, heads):
            if len(shape) == 2:  # hypersiren's rows enumerate a SIREN weight as (in, out), nn.Linear's as (out, in)
                weight = rearrange(weight, "(i o) h -> (o i) h", i=shape[1], o=shape[0])
                bias = rearrange(bias, "(i o) -> (o i)", i=shape[1], o=shape[0])
            head = nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                head.weight.copy_(weight)
                head.bias.copy_(bias)
            self.nets.append(nn.Sequential(*copy.deepcopy(hypernet.trunk), head))  # every trunk an equal copy

    def forward(self, image: Tensor, mask: Tensor, coords: Tensor) -> Prediction:
        latent = self.encoder(image, mask).global_latent
        tensors = [net(latent).view(len(latent), *shape) for net, shape in zip(self.nets, self.shapes)]
        hidden = coords
        for index, (weight, bias) in enumerate(zip(tensors[0::2], tensors[1::2])):
            hidden = hidden.matmul(weight.mT) + bias.unsqueeze(1)  # (B, N, in) @ (B, in, out)
            if index < len(tensors) // 2 - 1:
                hidden = torch.sin(self.omega * hidden)
        return Prediction(hidden, latent, tensors)  # the weight L2 sums every value: layout does not matter


# ---------------------------------------------------------------- workload


class Batch(NamedTuple):
    image: Tensor  # (B, C, H, W) in [-1, 1]
    mask: Tensor  # (B, 1, H, W) bool
    coords: Tensor  # (B, H*W, 2): every pixel is supervised
    target: Tensor  # (B, H*W, C)


def make_batch(config: ModelConfig, batch_size: int, size: int, device: str, seed: int = 0) -> Batch:
    """A synthetic batch: the cost does not depend on pixel values."""
    generator = torch.Generator().manual_seed(seed)
    image = 2 * torch.rand(batch_size, config.channels, size, size, generator=generator) - 1
    mask = training_context_mask(batch_size, (size, size), min_context=10, max_context=size * size, generator=generator)
    coords = cell_centres((size, size)).expand(batch_size, -1, -1)
    return Batch(*(t.to(device) for t in (image, mask, coords, rearrange(image, "b c h w -> b (h w) c"))))


def preset_step(config: RunConfig, device: str, batch_size: int) -> tuple[HyperSiren, Callable[[], None]]:
    """A model of ``config`` and train/train.py's own training step (``hypersiren.across.training``: batch assembly,
    ``train.compile``, ``train.amp``, the finiteness watch and the guarded fused update), on random uint8 images."""
    size, train = config.data.image_size, config.train
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2 * batch_size, 3, size, size), dtype=torch.uint8, generator=generator).to(device)
    fine = torch.randint(0, 256, (2 * batch_size, 3, 2 * size, 2 * size), dtype=torch.uint8, generator=generator)
    fine = fine.to(device)  # moved once: the timed step is the training step, not a host-to-device copy
    batches = ShuffledBatches(num_images=len(images), batch_size=batch_size, seed=0, device=device)
    torch.manual_seed(0)
    model = HyperSiren(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, fused=True)
    take_gradients = gradient_step(model, optimizer, train, FiniteWatch(torch.device(device)))
    steps = itertools.count()

    def step() -> None:
        index = next(steps)
        take_gradients(recipe_batch(train, images, batches, step=index, fine_images=fine), index)
        optimizer.step()

    return model, step


MODES = {  # name: the train fields it sets; the CUDA-only ones are left out on other devices
    "eager, fp32": {"compile": "off", "amp": False, "tf32": False},
    "compiled, fp32": {"compile": "default", "amp": False, "tf32": False},
    "eager, bf16 autocast": {"compile": "off", "amp": True, "tf32": False},
    "eager, TF32": {"compile": "off", "amp": False, "tf32": True},
    "compiled, bf16 autocast": {"compile": "default", "amp": True, "tf32": False},
    "compiled + CUDA graphs, bf16": {"compile": "reduce-overhead", "amp": True, "tf32": False},
}
CPU_MODES = ("eager, fp32", "compiled, fp32")  # autocast and TF32 act on CUDA only
VS_EAGER = "speed vs eager fp32"


def bench_modes(
    configs: dict[str, RunConfig], device: str, batch_size: int, rounds: int, gemm_rate: float, modes: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The training step of each config in each of ``modes`` (compile and precision, ``MODES``), interleaved:
    images/s, the share of the fp32 GEMM rate its matmul and convolution FLOPs reach, and the speed-up on eager
    fp32 of the same config."""
    rows = []
    # Each contender is another model to compile, and each batch size another shape: past dynamo's default of 8
    # recompilations of one step (training.gradient_step), later "compiled" contenders would silently run eager.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    for name, config in configs.items():
        variants = {
            mode: copy.deepcopy(config).update({f"train.{k}": v for k, v in MODES[mode].items()}) for mode in modes
        }
        flops = preset_flops(variants[modes[0]], device, batch_size)
        contenders = {}
        for mode, variant in variants.items():
            contenders[mode] = partial(_with_tf32, variant.train.tf32, preset_step(variant, device, batch_size)[1])
        samples = time_interleaved(contenders, device=device, rounds=rounds, calls=3)
        for mode, times in samples.items():
            rate = batch_size / statistics.median(times)
            rows.append(
                {
                    "preset": name,
                    "batch": batch_size,
                    "mode": mode,
                    "images/s": rate,
                    "% of fp32 GEMM": 100 * flops * rate / batch_size / gemm_rate,
                    VS_EAGER: paired_ratio(samples[modes[0]], times),
                }
            )
    set_tf32(False)
    return rows


def _with_tf32(enabled: bool, step: Callable[[], None]) -> None:
    set_tf32(enabled)  # contenders take turns: each sets its own matmul precision
    step()


def preset_flops(config: RunConfig, device: str, batch_size: int) -> int:
    """Matmul and convolution FLOPs of one eager training step of ``config`` (``preset_step``)."""
    eager = copy.deepcopy(config)
    eager.train.compile = "off"
    _, step = preset_step(eager, device, batch_size)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def bench_sizes(device: str, batch_size: int, rounds: int) -> list[dict[str, Any]]:
    """Training images/s of the size presets and of celeba64 without each of its two economies, interleaved."""
    presets = {name: RunConfig.load(PRESETS / f"{name}.toml") for name in SIZE_PRESETS}
    every_pixel = copy.deepcopy(presets["celeba64"])
    every_pixel.train.query_points = 0
    wide = copy.deepcopy(presets["celeba64"])
    wide.model.encoder_widths = list(presets["default"].model.encoder_widths)
    with_prior = copy.deepcopy(presets["default"])
    with_prior.update({"model.prior_components": 64})  # the prior's conditional mean in every step (model.py)
    configs = presets | {
        "celeba64, every pixel rendered": every_pixel,
        "celeba64, the default's encoder": wide,
        "default with a Gaussian prior of 64 components": with_prior,
    }
    contenders = {name: preset_step(config, device, batch_size)[1] for name, config in configs.items()}
    samples = time_interleaved(contenders, device=device, rounds=rounds, calls=1)
    return [
        {
            "training step": name,
            "image size": config.data.image_size,
            "points per image": (config.train.query_points or config.data.image_size**2) + config.train.fine_points,
            "images/s": batch_size / statistics.median(samples[name]),
            COST: paired_ratio(samples[name], samples["default"]),
        }
        for name, config in configs.items()
    ]


def batch_loss(model: nn.Module, batch: Batch) -> Tensor:
    return hypernetwork_loss(model(batch.image, batch.mask, batch.coords), batch.target)[0]


def loss_and_encoder_gradient(model: nn.Module, batch: Batch) -> tuple[float, Tensor]:
    loss = batch_loss(model, batch)
    gradients = torch.autograd.grad(loss, list(model.encoder.parameters()))
    return float(loss.detach()), torch.cat([g.flatten() for g in gradients])


def assert_same_numbers(expected: tuple[float, Tensor], got: tuple[float, Tensor], name: str) -> float:
    """Raise unless ``got`` has ``expected``'s loss and encoder gradient; return the gradient's relative error."""
    error = float((got[1] - expected[1]).norm() / expected[1].norm().clamp_min(1e-30))
    if not math.isclose(got[0], expected[0], rel_tol=1e-4) or error > 1e-3:
        raise AssertionError(f"{name} computes other numbers: loss {got[0]} vs {expected[0]}, gradient {error:.1e}")
    return error


def training_step(model: nn.Module, batch: Batch, tricks_off: tuple[str, ...] = (), fused: bool = True) -> Callable:
    optimizer = torch.optim.Adam(model.parameters(), fused=fused)  # fused: what train/train.py uses

    def step() -> None:
        with without(*tricks_off):
            batch_loss(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


# ---------------------------------------------------------------- timing


def time_interleaved(contenders: dict[str, Callable], device: str, rounds: int, calls: int) -> dict[str, list[float]]:
    """Seconds per call of each contender, one sample per round; turns alternate direction every round."""
    for run in contenders.values():  # warm-up: allocator, BLAS and oneDNN caches
        run()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for index in range(rounds):
        for name in list(contenders)[:: 1 if index % 2 == 0 else -1]:
            start = time.perf_counter()
            for _ in range(calls):
                contenders[name]()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            samples[name].append((time.perf_counter() - start) / calls)
    return samples


def paired_ratio(slower: list[float], faster: list[float]) -> float:
    """Median over rounds of slower/faster time: how many times faster, robust to load drift."""
    return statistics.median(s / f for s, f in zip(slower, faster))


def gemm_flops_per_second(device: str, size: int) -> float:
    """This device's fp32 matrix-multiply rate: the ceiling any training step works against."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    seconds = statistics.median(time_interleaved({"mm": lambda: a @ b}, device, rounds=5, calls=3)["mm"])
    return 2 * size**3 / seconds


def step_flops(model: nn.Module, batch: Batch) -> int:
    """Matmul and convolution FLOPs of one forward + backward."""
    with FlopCounterMode(display=False) as counter:
        batch_loss(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


# ---------------------------------------------------------------- the run


def bench_training(
    model: HyperSiren, batch: Batch, device: str, rounds: int, reference: "ReferenceModel | None"
) -> list[dict[str, Any]]:
    """Rows for one preset: hypersiren, (the reference and plain Adam,) and hypersiren without each trick."""
    expected = loss_and_encoder_gradient(model, batch)
    contenders = {"hypersiren": training_step(model, batch)}
    if reference is not None:
        error = assert_same_numbers(expected, loss_and_encoder_gradient(reference, batch), "the reference")
        print(f"equal numerics: loss {expected[0]:.6f} on both, encoder gradient relative error {error:.1e}")
        contenders["reference design"] = training_step(reference, batch, fused=False)
        contenders["with plain Adam"] = training_step(copy.deepcopy(model), batch, fused=False)
    for trick in TRICKS:
        with without(trick):
            assert_same_numbers(expected, loss_and_encoder_gradient(model, batch), f"without {trick}")
        contenders[f"without {trick}"] = training_step(copy.deepcopy(model), batch, tricks_off=(trick,))
    samples = time_interleaved(contenders, device=device, rounds=rounds, calls=2)
    return [
        {
            "training step": name,
            "images/s": len(batch.image) / statistics.median(times),
            SPEEDUP: None if name == "hypersiren" else paired_ratio(times, samples["hypersiren"]),
        }
        for name, times in samples.items()
    ]


@exits_cleanly()
def main() -> None:
    args = parse_args()
    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 on every side

    out = Path(args.out) if args.out else RESULTS / f"bench_{torch.device(device).type}.json"
    report = {"device": device_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    report |= {"batch_size": args.batch_size, "rounds": args.rounds, "gemm_size": args.gemm_size}
    # Refused before the minutes of timing: an --out that no write reaches, another setup's results, too large a step.
    require_writable(out)
    if not args.replace:
        require_same_setup(out, report)
    require_bench_memory(device, batch_size=args.batch_size)
    tables = []
    rate = report["gemm_flops_per_second"] = gemm_flops_per_second(device, args.gemm_size)
    for preset in ("paper", "default"):
        config = RunConfig.load(PRESETS / f"{preset}.toml")
        torch.manual_seed(0)
        model = HyperSiren(config.model).to(device)
        batch = make_batch(config.model, batch_size=args.batch_size, size=config.data.image_size, device=device)
        reference = ReferenceModel(model).to(device) if preset == "paper" else None  # the design it re-implements
        rows = bench_training(model, batch, device=device, rounds=args.rounds, reference=reference)
        flops = step_flops(model, batch)
        fraction = flops * rows[0]["images/s"] / args.batch_size / rate
        report[preset] = {"training": rows, "step_flops": flops, "gemm_fraction": fraction}
        tables.append(
            f"### Training step, {preset} preset, batch {args.batch_size}\n\n{markdown_table(formatted(rows))}\n\n"
            f"{flops / 1e9:.1f} GFLOP in matmuls and convolutions per step: {100 * fraction:.0f}% of this machine's "
            f"fp32 GEMM rate ({rate / 1e9:.1f} GFLOP/s at {args.gemm_size}²)"
        )
        if reference is not None:
            contenders = {"hypersiren": model, "reference design": reference}
            infer = {name: partial(torch.inference_mode()(m), *batch[:3]) for name, m in contenders.items()}
            samples = time_interleaved(infer, device=device, rounds=args.rounds, calls=8)
            inference = {name: args.batch_size / statistics.median(times) for name, times in samples.items()}
            report["inference"] = inference | {
                "ratio": paired_ratio(samples["reference design"], samples["hypersiren"])
            }
    sizes = report["sizes"] = bench_sizes(device, batch_size=args.batch_size, rounds=args.rounds)
    tables.append(
        f"### Training step by image size, batch {args.batch_size} (random images)\n\n"
        + markdown_table([row | {"images/s": f"{row['images/s']:.1f}"} | {COST: f"{row[COST]:.2f}x"} for row in sizes])
    )
    modes = tuple(MODES) if device.startswith("cuda") else CPU_MODES
    configs = {name: RunConfig.load(PRESETS / f"{name}.toml") for name in ("default", "celeba64")}
    report["modes"] = bench_modes(
        configs, device, batch_size=args.batch_size, rounds=args.rounds, gemm_rate=rate, modes=modes
    )
    tables.append(
        f"### Training step by compile mode and precision, batch {args.batch_size}\n\n{mode_table(report['modes'])}"
    )
    inference = report["inference"]
    tables.append(
        f"### Inference, paper preset, batch {args.batch_size}\n\nhypersiren {inference['hypersiren']:.1f} images/s, "
        f"reference design {inference['reference design']:.1f}: {inference['ratio']:.2f}x"
    )
    print("\n\n".join([f"{report['device']}, {report['threads']} threads, torch {report['torch']}", *tables]))
    write_json(report, out)


def require_bench_memory(device: str, batch_size: int) -> None:
    """Refuse a benchmark whose largest training step would not fit (``memory.training_bytes``, as train/train.py
    checks a run): celeba64 with every pixel rendered, or the largest size preset, at ``batch_size``."""
    presets = {name: RunConfig.load(PRESETS / f"{name}.toml") for name in ("paper", *SIZE_PRESETS)}
    every_pixel = copy.deepcopy(presets["celeba64"])  # as bench_sizes times it
    every_pixel.train.query_points = 0
    for config in [*presets.values(), every_pixel]:
        require_step_memory(config, batch_size=batch_size, device=device, fix="lower --batch-size")


def require_same_setup(path: Path, report: dict[str, Any]) -> None:
    """``ConfigError`` if ``path`` holds a benchmark of another machine, thread count, batch or GEMM size, or of more
    rounds than ``report``'s: the tracked results (and the README's Speed figures) must not be replaced by a quick
    or foreign run. A key an older file lacks is not compared; a file that is no benchmark is refused too."""
    saved = earlier_result(path, "device")
    if saved is None:
        return
    differ = [
        f"{key} {saved[key]!r}, this one {report[key]!r}"
        for key in ("device", "threads", "batch_size", "gemm_size")
        if key in saved and saved[key] != report[key]
    ]
    if isinstance(saved.get("rounds"), int) and saved["rounds"] > report["rounds"]:
        differ.append(f"{saved['rounds']} rounds, this one {report['rounds']}")
    if differ:
        raise ConfigError(
            f"{path} holds a benchmark of another setup ({'; '.join(differ)}): pass --out elsewhere, or --replace"
        )


def mode_table(rows: list[dict[str, Any]]) -> str:
    """``bench_modes``' rows as Markdown: rates to one decimal, shares in %, speed-ups as ``1.23x``."""
    return markdown_table(
        [
            row
            | {"images/s": f"{row['images/s']:.1f}", "% of fp32 GEMM": f"{row['% of fp32 GEMM']:.1f}%"}
            | {VS_EAGER: f"{row[VS_EAGER]:.2f}x"}
            for row in rows
        ]
    )


def formatted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rates to one decimal, speed-ups as ``1.23x``."""
    return [
        row | {"images/s": f"{row['images/s']:.1f}", SPEEDUP: "—" if row[SPEEDUP] is None else f"{row[SPEEDUP]:.2f}x"}
        for row in rows
    ]


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    cpu = Path("/proc/cpuinfo")
    lines = cpu.read_text().splitlines() if cpu.exists() else []  # Linux only
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"CPU ({names[0] if names else platform.processor()})"


if __name__ == "__main__":
    main()

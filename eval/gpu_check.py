"""The device check: one command on a GPU machine that measures the training step and trains the GPU presets.

    python datasets/pack.py                   # where ../shared is: CelebA packed into datasets/packed (10.4 MiB)
    python eval/gpu_check.py --presets        # on the GPU: the bench rows only (compiling takes most of it)
    python eval/gpu_check.py --skip-bench     # train/gpu/celeba32 and celeba64, trained and scored
    python eval/gpu_check.py --skip-bench --presets celeba128

Without options it does all of that but celeba128 in one call. Each call adds its sections to the device's
JSON report, so split calls make one report.

In order:
1. Bench rows (``eval/bench.py``'s ``bench_modes``): the training step of the default, celeba64 and
   paper presets at batch 32 and at the GPU batch, eager / compiled / bf16, as images/s and as a
   share of this device's measured fp32 GEMM rate; then each speed trick of the default step switched
   off in turn (``bench_training``), so a trick that does not pay on the GPU shows it.
2. Each GPU preset (``train/gpu/*.toml``) trained by ``train/train.py`` on the packed copy (resumed
   if its run folder exists), its real-loop rate read from the run's history.
3. Its held-out table: the GPU model, the CPU preset's pretrained model (``pretrained/celeba32``,
   ``pretrained/celeba64``) and the best classical fill, pasted, on the same masks of the packed
   val images, then the differences.
It prints one Markdown report and writes it, with every number, to ``eval/results/bench_<device>.json``.
It needs only the repository and ``datasets/packed``: no ``../shared``, no network.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hypersiren.across.baseline_fill import CLASSICAL_FILLS
from hypersiren.across.checkpoint import load_run
from hypersiren.across.config import RunConfig
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import evaluate_inpainting
from hypersiren.across.model import HyperSiren
from hypersiren.across.training import set_tf32
from hypersiren.cli import exits_cleanly, int_in, program
from hypersiren.errors import ConfigError
from hypersiren.results import earlier_result, markdown_table, write_json

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
import bench  # noqa: E402  (a program beside this one, not a package)

GPU_PRESETS = {name: REPO / "train" / "gpu" / f"{name}.toml" for name in ("celeba32", "celeba64", "celeba128")}
PACKED = REPO / "datasets" / "packed" / "celeba128"
EVAL_IMAGES = {"celeba32": 256, "celeba64": 256, "celeba128": 64}  # biharmonic at 128x128 takes ~0.25 s an image
GPU_BATCH = 256
# Compiling takes about a minute a contender: compiled rows at the GPU batch only.
BENCH_MODES = {
    32: ("eager, fp32",),
    GPU_BATCH: ("eager, fp32", "eager, bf16 autocast", "eager, TF32", "compiled, fp32", "compiled, bf16 autocast"),
}


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    parser.add_argument(
        "--presets",
        nargs="*",
        choices=sorted(GPU_PRESETS),
        default=["celeba32", "celeba64"],
        help="GPU presets to train and score (none: the bench rows only)",
    )
    parser.add_argument("--data-root", default=str(PACKED), help="CelebA layout to train and score on")
    parser.add_argument("--out", default=str(REPO / "runs" / "gpu_check"), help="folder of the GPU presets' runs")
    parser.add_argument("--skip-bench", action="store_true", help="train and score only")
    parser.add_argument("--rounds", type=int_in(1), default=5, help="interleaved bench rounds")
    parser.add_argument("--eval-images", type=int_in(1), default=None, help="val images scored (default per preset)")
    parser.add_argument("--train-option", action="append", default=[], help="an extra train.py option, e.g. KEY=VALUE")
    parser.add_argument("--json", default=None, help="the report (default eval/results/bench_<device type>.json)")
    return parser.parse_args()


@exits_cleanly()
def main() -> None:
    args = parse_args()
    if not Path(args.data_root).is_dir():
        raise FileNotFoundError(f"no packed data at {args.data_root}: run python datasets/pack.py where ../shared is")
    device = args.device
    set_tf32(False)  # fp32 means fp32 in the GEMM rate and in every eager fp32 row
    path = Path(args.json or REPO / "eval" / "results" / f"bench_{device.split(':')[0]}.json")
    report: dict[str, Any] = {"device": bench.device_name(device), "torch": torch.__version__, "presets": {}}
    earlier = earlier_result(path, "presets", what="a report of eval/gpu_check.py", option="--json") or {}
    if earlier.get("device") == report["device"] and "presets" in earlier:  # another part of the same check
        report = earlier | report | {"presets": earlier["presets"]}
    report["gemm_flops_per_second"] = rate = bench.gemm_flops_per_second(device, 4096 if "cuda" in device else 1024)
    sections = [f"# GPU check: {report['device']}, torch {report['torch']}", f"fp32 GEMM: {rate / 1e12:.1f} TFLOP/s"]
    if not args.skip_bench:
        report["bench"] = bench_rows(device, args.rounds, rate)
        sections.append(f"## Training step\n\n{bench.mode_table(report['bench'])}")
        report["tricks"] = trick_rows(device, args.rounds)
        tricks = bench.markdown_table(bench.formatted(report["tricks"]))
        sections.append(f"## Each speed trick, default preset, batch {GPU_BATCH}\n\n{tricks}")
    for name in args.presets:
        run = Path(args.out) / name
        started = time.perf_counter()
        train(GPU_PRESETS[name], run, args.data_root, device, args.train_option)
        result = {"wall_seconds": time.perf_counter() - started} | loop_rate(run, device, rate)
        result["held_out"] = held_out(name, run, args.data_root, args.eval_images or EVAL_IMAGES[name])
        report["presets"][name] = result
        sections.append(preset_section(name, result))
    text = "\n\n".join(sections)
    print(text)
    write_json(report | {"markdown": text}, path)


def bench_rows(device: str, rounds: int, gemm_rate: float) -> list[dict[str, Any]]:
    """``bench.bench_modes`` of the default, celeba64 and paper presets at batch 32 and at ``GPU_BATCH``."""
    configs = {name: RunConfig.load(bench.PRESETS / f"{name}.toml") for name in ("default", "celeba64", "paper")}
    modes = BENCH_MODES if "cuda" in device else dict.fromkeys(BENCH_MODES, bench.CPU_MODES[:1])
    return [
        row
        for batch, batch_modes in modes.items()
        for row in bench.bench_modes(
            configs, device, batch_size=batch, rounds=rounds, gemm_rate=gemm_rate, modes=batch_modes
        )
    ]


def trick_rows(device: str, rounds: int) -> list[dict[str, Any]]:
    """``bench.bench_training``'s rows for the default model at ``GPU_BATCH``: eager, each trick switched off."""
    config = RunConfig.load(bench.PRESETS / "default.toml")
    torch.manual_seed(0)
    model = HyperSiren(config.model).to(device)
    batch = bench.make_batch(config.model, batch_size=GPU_BATCH, size=config.data.image_size, device=device)
    return bench.bench_training(model, batch, device=device, rounds=rounds, reference=None)


def train(preset: Path, run: Path, data_root: str, device: str, options: list[str]) -> None:
    """``train/train.py`` on ``preset`` into ``run`` (resumed where it stopped), its progress on this terminal."""
    command = [sys.executable, str(REPO / "train" / "train.py"), "--config", str(preset), "--out", str(run)]
    command += ["--data.root", data_root, "--device", device, *(f"--{option}" for option in options)]
    result = subprocess.run(command, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:  # train.py has said why, in one line: the check stops with its exit code
        print(f"error: training train/gpu/{preset.name} stopped (exit {result.returncode}): see above", file=sys.stderr)
        raise SystemExit(result.returncode)


def loop_rate(run: Path, device: str, gemm_rate: float) -> dict[str, float]:
    """The real loop's images/s over every log interval but the first (which holds start-up and compilation):
    checkpoint and held-out image steps included, as ``steps x batch / seconds`` (the intervals' harmonic mean),
    and the share of the fp32 GEMM rate that is."""
    config = RunConfig.load(run / "config.json")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    rates = [entry["images_per_second"] for entry in history if "images_per_second" in entry]
    if not rates:
        raise ConfigError(f"{run / 'history.jsonl'} logged no interval: give a train.log_every below train.max_steps")
    rates = rates[1:] or rates
    images_per_second = statistics.harmonic_mean(rates)
    flops = bench.preset_flops(config, device, batch_size=8) / 8
    return {
        "images_per_second": images_per_second,
        "gemm_percent": 100 * flops * images_per_second / gemm_rate,
        "minutes_of_steps": config.train.max_steps * config.train.batch_size / images_per_second / 60,
    }


def held_out(name: str, run: Path, data_root: str, count: int) -> dict[str, dict[str, float | str]]:
    """Pasted PSNR per setting of the GPU run, the CPU preset's pretrained run where there is one, and the best
    classical fill, on the same seeded masks of the first ``count`` val images of ``data_root``."""
    config, model = load_run(run, data_root=data_root)
    images = load_images(config.data, "val", limit=count)
    settings = protocol_settings(images.shape[2:])[:-1]
    ours = evaluate_inpainting(model=model, images=images, mean_image=None, settings=settings)
    table: dict[str, dict[str, float | str]] = {}
    for setting, scores in ours.items():
        best = max(CLASSICAL_FILLS[2], key=lambda fill: scores[fill]["psnr"])
        table[setting] = {"gpu": scores["hypersiren_pasted"]["psnr"], "classical": scores[best]["psnr"], "fill": best}
    cpu_run = REPO / "pretrained" / name
    if (cpu_run / "checkpoint.pt").is_file():
        _, cpu_model = load_run(cpu_run, data_root=data_root)
        theirs = evaluate_inpainting(model=cpu_model, images=images, mean_image=None, settings=settings)
        for setting, scores in theirs.items():
            table[setting]["cpu_pretrained"] = scores["hypersiren_pasted"]["psnr"]
    return table | {"images": count}


def preset_section(name: str, result: dict[str, Any]) -> str:
    held = {setting: row for setting, row in result["held_out"].items() if isinstance(row, dict)}
    rows = [
        {"PSNR (dB), pasted": f"GPU preset (train/gpu/{name}.toml)"} | {s: f"{r['gpu']:.2f}" for s, r in held.items()}
    ]
    if all("cpu_pretrained" in row for row in held.values()):
        rows.append(
            {"PSNR (dB), pasted": f"CPU preset (pretrained/{name})"}
            | {s: f"{r['cpu_pretrained']:.2f}" for s, r in held.items()}
        )
        rows.append(
            {"PSNR (dB), pasted": "GPU − CPU"} | {s: f"{r['gpu'] - r['cpu_pretrained']:+.2f}" for s, r in held.items()}
        )
    rows.append(
        {"PSNR (dB), pasted": "best classical fill"}
        | {s: f"{r['classical']:.2f} ({r['fill']})" for s, r in held.items()}
    )
    rows.append(
        {"PSNR (dB), pasted": "GPU − best classical"}
        | {s: f"{r['gpu'] - r['classical']:+.2f}" for s, r in held.items()}
    )
    return (
        f"## {name}: {result['images_per_second']:,.0f} images/s in the training loop "
        f"({result['gemm_percent']:.1f}% of the fp32 GEMM rate), {result['minutes_of_steps']:.1f} min of steps, "
        f"{result['wall_seconds'] / 60:.1f} min in all\n\n"
        f"Held-out: the first {result['held_out']['images']} val images, the same masks for every row.\n\n"
        + markdown_table(rows)
    )


if __name__ == "__main__":
    main()

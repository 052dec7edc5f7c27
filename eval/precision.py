"""PSNR cost of running parts of a trained HyperSiren in bf16: the accuracy half of mixed precision.

A bf16 GEMM (tensor cores, or oneDNN on CPU) rounds its operands to bf16 and
accumulates in fp32. Rounding the operands to bf16 and multiplying in fp32
reproduces that up to summation order, so each choice's PSNR cost is measured
here on any device; its speed has to be measured on the GPU (``eval/bench.py``).
Choices are cumulative, from safest to most aggressive:

- ``bf16_trunk``: encoder + hypernetwork under bf16 autocast, SIREN fp32 (what
  ``train/train.py`` does on CUDA);
- ``bf16_hidden``: also the hidden SIREN layers' GEMM operands (weights, biases,
  input activations) in bf16, the first layer and every sine argument fp32;
- ``bf16_first``: also the first layer's operands (coordinates, first weights);
- ``bf16_sine``: also the pre-activations rounded to bf16 before the sine, i.e. a
  GEMM with bf16 output: at |30·x| ~ 40 a bf16 argument is off by up to 0.125 rad.

    python eval/precision.py --run runs/celeba32

Prints the table, then writes RUN_DIR/eval/precision.json and precision.md, unless that file measured more
(more images, another data root or seed) and --replace is not given.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.cli import add_run_options, exits_cleanly, int_in, parse_before_imports, program


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_run_options(parser)
    parser.add_argument("--limit", type=int_in(1), default=256, help="held-out images to evaluate")
    parser.add_argument(
        "--replace", action="store_true", help="replace precision.json even if it measured more than this evaluation"
    )
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor

from hypersiren.across.checkpoint import load_run, require_image_run
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import mean_psnrs, require_not_fuller
from hypersiren.across.memory import inpaint_bytes, require_memory
from hypersiren.across.model import HyperSiren
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.render import SirenParams
from hypersiren.results import markdown_table, write_results


@dataclass(frozen=True)
class Precision:
    label: str
    bf16_trunk: bool  # encoder + hypernetwork under bf16 autocast
    bf16_operands_from: int | None  # SIREN layers from this index on take bf16 GEMM operands; None: all fp32
    bf16_sine: bool  # pre-activations rounded to bf16 before the sine


BATCH_SIZE = 128  # images rendered at once, every pixel of each
PRECISIONS = {
    "fp32": Precision("fp32 throughout", bf16_trunk=False, bf16_operands_from=None, bf16_sine=False),
    "bf16_trunk": Precision(
        "encoder + hypernetwork bf16 (train.py on CUDA)", bf16_trunk=True, bf16_operands_from=None, bf16_sine=False
    ),
    "bf16_hidden": Precision(
        "+ hidden SIREN layers' GEMM operands bf16", bf16_trunk=True, bf16_operands_from=1, bf16_sine=False
    ),
    "bf16_first": Precision(
        "+ first SIREN layer's operands bf16", bf16_trunk=True, bf16_operands_from=0, bf16_sine=False
    ),
    "bf16_sine": Precision(
        "+ sine arguments bf16 (bf16 GEMM output)", bf16_trunk=True, bf16_operands_from=0, bf16_sine=True
    ),
}


def to_bf16_and_back(tensor: Tensor) -> Tensor:
    return tensor.bfloat16().float()


def rounded_render(
    params: SirenParams, coords: Tensor, omega: float, precision: Precision, shifts: list[Tensor] | None = None
) -> Tensor:
    """``render.render`` (fp32 params, coords and shifts, one omega) with ``precision``'s bf16 roundings."""
    hidden = coords  # (B, N, 2)
    last = len(params) - 1
    for index, (weight, bias) in enumerate(params):
        bias = bias.unsqueeze(1) if shifts is None else bias.unsqueeze(1) + shifts[index]  # (B, 1 or N, out)
        if precision.bf16_operands_from is not None and index >= precision.bf16_operands_from:
            hidden, weight, bias = to_bf16_and_back(hidden), to_bf16_and_back(weight), to_bf16_and_back(bias)
        pre = torch.baddbmm(bias, hidden, weight)  # (B, N, out), fp32 accumulation
        if index == last:
            return pre
        pre = omega * pre
        hidden = torch.sin(to_bf16_and_back(pre) if precision.bf16_sine else pre)
    raise ValueError("params hold no layer")


@torch.no_grad()
def inpaint_with(model: HyperSiren, image: Tensor, mask: Tensor, precision: Precision) -> Tensor:
    """``HyperSiren.inpaint`` at the image's own size under ``precision``: ``-> (B, C, H, W)``."""
    autocast = torch.autocast(image.device.type, dtype=torch.bfloat16) if precision.bf16_trunk else nullcontext()
    with autocast:
        latents = model.encode(image, mask)
        params = model.decoder.hypernet(latents.global_latent)
    params = [type(layer)(*(t.float() for t in layer)) for layer in params]
    height, width = image.shape[-2:]
    coords = cell_centres((height, width), image.device).expand(image.shape[0], -1, -1)
    shifts = model.decoder.shifts(latents.local_grid, coords)  # fp32, as SirenDecoder renders
    values = rounded_render(params, coords, model.config.omega, precision, shifts)
    return rearrange(values, "b (h w) c -> b c h w", h=height, w=width)


def evaluate_precisions(
    model: HyperSiren,
    images: Tensor,
    settings: tuple[str, ...] | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean PSNR (dB) per image on the evaluation's seeded masks: ``{metric: {precision: {setting: dB}}}``.

    ``psnr``: the raw rendering against the truth; ``psnr_vs_fp32``: against the fp32 rendering,
    the error the choice adds, which bounds what it can cost a better-trained model.
    """
    device = next(model.parameters()).device

    def predict(image: Tensor, mask: Tensor, rows: slice, setting: str) -> dict[tuple[str, str], tuple[Tensor, Tensor]]:
        exact = inpaint_with(model, image, mask, PRECISIONS["fp32"])
        rendered = {
            name: inpaint_with(model, image, mask, p) if name != "fp32" else exact for name, p in PRECISIONS.items()
        }
        return {
            (metric, name): (prediction, truth)
            for name, prediction in rendered.items()
            for metric, truth in (("psnr", image), ("psnr_vs_fp32", exact))
        }

    settings = settings or protocol_settings(images.shape[2:])
    scored = mean_psnrs(images, settings, predict, device, seed, batch_size, progress=True, desc="precisions")
    return {
        metric: {name: {setting: scored[setting][metric, name]["psnr"] for setting in settings} for name in PRECISIONS}
        for metric in ("psnr", "psnr_vs_fp32")
    }


def require_precision_memory(model: HyperSiren, images: Tensor, device: str) -> None:
    """Refuse an evaluation whose batch would not fit: ``inpaint_with`` renders every pixel of ``BATCH_SIZE`` images
    at once (``memory.inpaint_bytes`` with the whole image as one chunk), before the minutes of evaluation."""
    count, _, height, width = images.shape
    batch = min(count, BATCH_SIZE)
    require_memory(
        inpaint_bytes(model.config, batch, (height, width), size=(height, width), chunk_size=height * width),
        device=device,
        what=f"rendering {batch} images of {height}x{width} at once",
        fix="evaluate a smaller model or on a larger device",
    )


def precision_tables(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Two tables: PSNR against the truth (change from fp32), and against the fp32 rendering."""
    psnrs, fidelity = results["psnr"], results["psnr_vs_fp32"]
    tables = []
    for title, cell in (
        ("PSNR (dB) vs truth", lambda name, s: f"{psnrs[name][s]:.2f} ({psnrs[name][s] - psnrs['fp32'][s]:+.2f})"),
        ("PSNR (dB) vs the fp32 rendering", lambda name, s: f"{fidelity[name][s]:.1f}"),
    ):
        rows = [
            {f"{title}, cumulative choices": PRECISIONS[name].label} | {s: cell(name, s) for s in psnrs["fp32"]}
            for name in psnrs
        ]
        tables.append(markdown_table(rows))
    return "\n\n".join(tables)


@exits_cleanly()
def main() -> None:
    args = parse_args()
    config, model = load_run(args.run, device=args.device, data_root=args.data_root)
    require_image_run(config, args.run, program="eval/precision.py")
    images = load_images(config.data, config.data.eval_split, limit=args.limit)
    split, out_dir = config.data.eval_split, Path(args.run) / "eval"
    summary = {"dataset": config.data.dataset, "data_root": config.data.root, "split": split, "num_images": len(images)}
    summary["seed"] = args.seed
    if not args.replace:  # before the minutes of evaluation
        require_not_fuller(out_dir / "precision.json", summary, scales=[])
    require_precision_memory(model, images, device=args.device)
    results = evaluate_precisions(model, images, seed=args.seed)

    tables = f"### {config.data.dataset} {split}, {len(images)} images, raw rendering\n\n{precision_tables(results)}\n"
    print(tables)  # before writing: a full disk or a read-only run folder must not lose the evaluation
    write_results(summary | {"results": results}, tables, out_dir, "precision")
    print(f"wrote {out_dir / 'precision'}.json and .md")


if __name__ == "__main__":
    main()

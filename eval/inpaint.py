"""Complete your own images with a trained run, or draw the run's held-out figures.

    python eval/inpaint.py --image photo.jpg           # pretrained/celeba64, 10% of the photo's pixels observed
    python eval/inpaint.py --image photo.jpg --mask mask.png --out completed.png
    python eval/inpaint.py --image a.jpg b.png --context 100 --size 512 --out completed/
    python eval/inpaint.py --run runs/celeba32 --num-images 8          # the held-out figures

Your images (--image): any format PIL reads, any size. Each is centre-cropped to a square and resized
(antialiased) to the output size --size N (NxN, at most 512; by default the crop's own side, at most 256: a larger
photo is resized to 256, and the program says so). Its observed pixels are chosen there, at N x N: a --mask (a PNG
of any size, cropped and resized like the image, nearest neighbour: white = observed, black = missing, i.e. luminance >
127; transparent counts as white), --context N random pixels, --context P% of them (a new draw per image, from
--seed), or --top-half; by default --context 10%. The model reads every observed pixel: its input (the run's
data.image_size, e.g. 64x64) has each cell observed where any of its pixels is, at their mean; it renders at N x N,
and above its own size the rendering is corrected by your pixels (their error spread by a biharmonic fill), so
your observed pixels are exactly yours and their detail reaches the missing ones near them; where the run has
detail weights (RUN_DIR/detail_weights.json, eval/fit_detail.py), the denser your pixels against the model's
cells, the more of the completion is biharmonic's fill of them and the less the model's own detail.
--out is a PNG (one image) or a folder that gets <name>.png per input (default: ./completed); beside
each, <name>_comparison.png: observed (missing pixels magenta, see its legend) | HyperSiren |
biharmonic (scikit-image's classical fill of the same pixels at N x N) | the run's Gaussian (PCA) prior at the
model's size, bicubic to N and corrected the same way, where the run was trained with one
(model.prior_components; the program says so where not) | original (your photo at N), every tile NxN.
A completion that would replace an input, another completion, or a file hypersiren did not write is
refused before anything is written; a rerun replaces its own.

Held-out figures (without --image), in RUN_DIR/figures, one row per held-out image (another --num-images,
--seed or --data.root writes to a folder of its own, e.g. RUN_DIR/figures_2images, never over these):
    inpaint_<setting>.png   observed (N px, missing magenta) | HyperSiren (observed pixels kept) | truth, per setting
    inpaint_overview.png    observed | HyperSiren | biharmonic (| Gaussian prior) for 10, 100 and 1000 pixels, truth
    superres_<factor>x.png  input (nearest) | HyperSiren rendered at factor x from every pixel
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse
from pathlib import Path

from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.cli import BEST_FACE_MODEL, add_run_options, exits_cleanly, int_in, parse_before_imports, program

DEFAULT_NUM_IMAGES = 8  # rows of the held-out figures in RUN_DIR/figures; other counts go to a folder of their own
DEFAULT_CONTEXT = 0.1  # of the pixels, when no --mask, --context or --top-half is given
# The default output side: the photo's own, at most this. Its two biharmonic fills take ~3 s at 256x256 on a CPU core,
# ~30 s at MAX_PHOTO_SIDE (512), which --size still offers.
DEFAULT_SIDE = 256
# Renders are seen best larger than the 32x32 tiles' 1.4 inches; the super-resolution labels need the width too.
SUPERRES_TILE_INCHES = 2.2
COMPARISON_TILE_INCHES = 3.0


def context_amount(text: str) -> int | float:
    """An argparse type: ``N`` observed pixels (an int, N >= 1) or ``P%`` of them (a fraction in (0, 1])."""
    try:
        amount = float(text.removesuffix("%")) / 100 if text.endswith("%") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a pixel count (100) or a percentage (5%), got {text!r}") from None
    if isinstance(amount, float) and not 0 < amount <= 1:
        raise argparse.ArgumentTypeError(f"a percentage must be above 0% and at most 100%, got {text}")
    if isinstance(amount, int) and amount < 1:
        raise argparse.ArgumentTypeError(f"must observe at least 1 pixel, got {text}")
    return amount


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_run_options(parser, default_run=BEST_FACE_MODEL)
    own = parser.add_argument_group("completing your own images")
    own.add_argument("--image", nargs="+", type=Path, help="image files to complete (any format PIL reads)")
    observed = own.add_mutually_exclusive_group()
    observed.add_argument("--mask", type=Path, help="PNG, white = observed, black = missing (any size)")
    observed.add_argument("--context", type=context_amount, help="N random observed pixels, or P%% of them")
    observed.add_argument("--top-half", action="store_true", help="observe the top half")
    own.add_argument(
        "--size",
        type=int_in(8, MAX_PHOTO_SIDE),
        help="output side in pixels: the photo is resized to it and observed there (default: the crop's own side, "
        f"at most {DEFAULT_SIDE})",
    )
    own.add_argument("--out", type=Path, help="a PNG (one image) or a folder (default: ./completed)")
    held_out = parser.add_argument_group("held-out figures (without --image)")
    held_out.add_argument("--num-images", type=int_in(1, 64), default=DEFAULT_NUM_IMAGES, help="rows of each figure")
    held_out.add_argument("--factor", type=int_in(1, 16), default=4, help="super-resolution factor of the render")
    held_out.add_argument("--display-scale", type=int_in(1, 32), default=4, help="PNG pixels per input pixel, at least")
    args = parser.parse_args()
    if args.image is None and (args.mask or args.context or args.top_half or args.size or args.out):
        parser.error("--mask, --context, --top-half, --size and --out complete images: give them with --image")
    return args


parse_before_imports(parse_args, __name__)

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.checkpoint import load_run, require_image_run
from hypersiren.across.config import RunConfig, command_line_root
from hypersiren.across.context import first_half_mask, protocol_settings, random_context_mask
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import root_tag, seeded_masks
from hypersiren.across.images import IMAGE_SUFFIXES, decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.across.user_images import DetailWeights, complete_photo, observed_per_cell, scores_line
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import ConfigError, DatasetError
from hypersiren.figures import MISSING_LEGEND, context_image, save_labeled_grid, save_png, written_here


@exits_cleanly()
@torch.no_grad()
def main() -> None:
    args = parse_args()
    config, model = load_run(args.run, device=args.device, data_root=args.data_root)
    require_image_run(config, args.run, program="eval/inpaint.py")
    if args.image is None:
        write_held_out_figures(model, config, args)
    else:
        detail = DetailWeights.of_run(args.run)
        complete_images(model, size=config.data.image_size, args=args, detail=detail)


def complete_images(
    model: HyperSiren, size: int, args: argparse.Namespace, detail: DetailWeights | None = None
) -> None:
    """Complete each ``--image`` at its output size from its observed pixels there, and write it with its comparison
    figure; every input is read (and every mask made) before any write. ``detail``: the run's ``DetailWeights``."""
    targets = output_paths(args.image, args.out, inputs=[*args.image, *([args.mask] if args.mask else [])])
    photos = [decode_image(path) for path in args.image]
    generator = torch.Generator().manual_seed(args.seed)  # one draw per image, in order
    sides = [args.size or min(*photo.shape[-2:], DEFAULT_SIDE) for photo in photos]
    masks = [observed_pixels(args, side=side, generator=generator).to(args.device) for side in sides]
    for photo, mask, side, target in zip(photos, masks, sides, targets):
        if args.size is None and min(photo.shape[-2:]) > side:
            square, most = min(photo.shape[-2:]), MAX_PHOTO_SIDE
            print(f"{target.stem}: its {square} px square is completed at {side}x{side} (--size: up to {most})")
        completion = complete_photo(model, photo, mask, model_side=size, detail=detail)
        completed = to_unit_range(completion.hypersiren)
        save_png(completed, target)
        num_observed = int(mask.sum())
        how = "corrected by your pixels at that size" if side > size else "your pixels kept"
        if detail is not None and side > size:
            density = observed_per_cell(mask, model_side=size)  # (1,)
            keep = float(detail(density)[0])
            how += f", {keep:.0%} of its detail kept at {float(density[0]):.2g} observed pixels per model cell"
        print(
            f"wrote {target}: {side}x{side} completion from {num_observed} of {side * side} pixels "
            f"(the model read them at {size}x{size} and rendered at {side}x{side}, {how})"
        )
        if min(photo.shape[-2:]) >= side:  # the photo holds the truth at this size: every pixel scored
            print(f"  {scores_line(completion)}")
        original = to_unit_range(completion.original)
        labels = [f"observed ({num_observed} px)", "HyperSiren", f"biharmonic at {side}²"]
        columns = [context_image(original, completion.observed), completed, to_unit_range(completion.biharmonic)]
        if completion.gaussian is not None:
            labels.append(f"Gaussian prior at {size}²" + (", bicubic" if side > size else ""))
            columns.append(to_unit_range(completion.gaussian))
        else:
            print(f"no Gaussian-prior column: {args.run} was trained without one (model.prior_components 0)")
        labels.append("original")
        comparison = comparison_path(target)
        write_figure([*columns, original], labels, comparison, tile_inches=COMPARISON_TILE_INCHES)
        print(f"wrote {comparison}: {' | '.join(labels)}, {side}x{side} tiles, missing pixels in magenta")


def output_paths(images: list[Path], out: Path | None, inputs: list[Path]) -> list[Path]:
    """Where each completion goes: ``out`` itself if it is a PNG (one image only), else ``out/<name>.png``.

    Refused before anything is read or written: a folder ``out`` that is a file, and any completion or
    comparison (``comparison_path``) that would replace one of the ``inputs``, another output, or an existing file
    that hypersiren did not write.
    """
    out = out or Path("completed")
    if out.suffix.lower() in IMAGE_SUFFIXES and out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: completions are PNGs, lossless so observed pixels stay exact: name it .png")
    if out.suffix.lower() == ".png":
        if len(images) > 1:
            raise ConfigError(f"--out {out} is one PNG for {len(images)} images: give a folder")
        if out.is_dir():
            raise ConfigError(f"--out {out} is a folder: name the PNG inside it, e.g. {out / 'completed.png'}")
        targets = [out]
    else:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file, not a folder: name a folder, or a .png for one image")
        names = [image.stem for image in images]
        folded = [name.casefold() for name in names]  # a.png and A.png are one file where case is ignored (macOS)
        repeated = sorted({name for name, key in zip(names, folded) if folded.count(key) > 1})
        if repeated:
            raise ConfigError(f"several --image files are named {repeated[0]}: rename them or complete them one by one")
        targets = [out / f"{name}.png" for name in names]
    outputs = [path for target in targets for path in (target, comparison_path(target))]
    _require_distinct(outputs, inputs)
    for output in outputs:  # a rerun replaces its own completions, never a user's file of the same name
        if output.exists() and not written_here(output):
            raise ConfigError(f"{output} exists and hypersiren did not write it: choose another --out, or move it")
    return targets


def comparison_path(target: Path) -> Path:
    """The comparison figure written beside the completion ``target``."""
    return target.with_name(f"{target.stem}_comparison.png")


def _require_distinct(outputs: list[Path], inputs: list[Path]) -> None:
    """``ConfigError`` if two ``outputs`` are one file, or an output is one of the ``inputs`` (a user's photo or mask
    is never replaced by a completion); paths are compared resolved, and as files where both exist (hard links)."""
    seen: dict[Path, Path] = {}
    for output in outputs:
        resolved = output.resolve()
        if resolved in seen:
            raise ConfigError(
                f"{output} would be written twice (the inputs' outputs collide): rename an --image or complete "
                "them one by one"
            )
        seen[resolved] = output
        for given in inputs:
            if resolved == given.resolve() or (output.exists() and given.exists() and output.samefile(given)):
                raise ConfigError(f"--out would write {output} over the input {given}: choose another --out")


def observed_pixels(args: argparse.Namespace, side: int, generator: torch.Generator) -> Tensor:
    """The mask ``(1, 1, side, side)`` that --mask, --context or --top-half ask for at the output size; by default
    10% random, drawn from ``generator``."""
    if args.top_half:
        return first_half_mask(1, (side, side))
    if args.mask is not None:
        luminance = TF.rgb_to_grayscale(decode_image(args.mask))  # (1, H, W) uint8
        mask = square_resize(luminance, side, nearest=True) > 127
        if not mask.any():
            raise DatasetError(
                f"mask {args.mask} observes no pixel at {side}x{side}: white (> 127) marks observed pixels"
            )
        return mask[None]
    amount = DEFAULT_CONTEXT if args.context is None else args.context
    num_context = amount if isinstance(amount, int) else max(1, round(amount * side * side))
    if num_context > side * side:
        raise ConfigError(
            f"--context {amount} is more pixels than the {side}x{side} output has: give at most {side * side} "
            "(or a percentage)"
        )
    return random_context_mask(1, (side, side), num_context, generator=generator)


def write_held_out_figures(model: HyperSiren, config: RunConfig, args: argparse.Namespace) -> None:
    """The figures of the module docstring, of the first ``--num-images`` held-out images."""
    image = to_model_space(load_images(config.data, config.data.eval_split, limit=args.num_images)).to(args.device)
    count, _, height, width = image.shape
    truth = to_unit_range(image)
    out_dir = Path(args.run) / figures_folder(args)
    written, overview_columns, overview_labels = [], [], []
    for setting in protocol_settings((height, width)):
        mask = seeded_masks(setting, count=count, shape=(height, width), seed=args.seed).to(args.device)
        prediction = to_unit_range(model.inpaint(image, mask))
        observed = context_image(truth, mask)
        labels = [f"observed ({int(mask[0].sum())} px)", "HyperSiren", "truth"]  # every image: the same count
        path = out_dir / f"inpaint_{setting}.png"
        written.append(write_figure([observed, prediction, truth], labels, path, pixel_scale=args.display_scale))
        if setting.isdigit():  # the three densities
            overview_columns += [observed, prediction, to_unit_range(classical_fill("biharmonic", image, mask))]
            overview_labels += [f"{setting} px", "HyperSiren", "biharmonic"]
            if model.prior is not None:  # the run's own Gaussian prior (a run without one: no column)
                overview_columns.append(to_unit_range(model.prior(image, mask)))
                overview_labels.append("Gaussian prior")
    path = out_dir / "inpaint_overview.png"
    labels = [*overview_labels, "truth"]
    written.append(write_figure([*overview_columns, truth], labels, path, pixel_scale=args.display_scale))

    size = (args.factor * height, args.factor * width)
    mask = seeded_masks("full", count=count, shape=(height, width), seed=args.seed).to(args.device)
    rendered = to_unit_range(model.inpaint(image, mask, size=size))
    upsampled = F.interpolate(truth, size=size, mode="nearest")
    labels = [f"input {height}×{width} (nearest)", f"HyperSiren at {args.factor}x ({size[0]}×{size[1]})"]
    path = out_dir / f"superres_{args.factor}x.png"
    scale = args.display_scale / args.factor  # per input pixel, as in the other figures
    written.append(
        write_figure(
            [upsampled, rendered], labels, path, missing=False, pixel_scale=scale, tile_inches=SUPERRES_TILE_INCHES
        )
    )
    print(f"wrote {len(written)} figures to {out_dir}")


def figures_folder(args: argparse.Namespace) -> str:
    """``figures`` for the run's own held-out images at the default settings; figures of fewer or more images,
    another --seed or another --data.root go to a folder named by what differs (``figures_2images_seed3``), so
    that they never replace the run's own."""
    parts = ["figures"]
    if args.num_images != DEFAULT_NUM_IMAGES:
        parts.append(f"{args.num_images}images")
    if args.seed != 0:
        parts.append(f"seed{args.seed}")
    if args.data_root:
        parts.append(root_tag(command_line_root(args.data_root)))
    return "_".join(parts)


def write_figure(
    columns: list[Tensor], labels: list[str], path: Path, missing: bool = True, **grid_options: float
) -> Path:
    """Columns of tiles, each ``(B, 3, H, W)`` in [0, 1], as a PNG with one labelled row per image and, where a
    column shows ``missing`` pixels, the legend of their colour; returns ``path``.

    ``grid_options`` go to ``save_labeled_grid`` (``pixel_scale``, ``tile_inches``).
    """
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: one image per row
    legend = MISSING_LEGEND if missing else None
    save_labeled_grid(tiles, path, column_labels=labels, legend=legend, **grid_options)
    return path


if __name__ == "__main__":
    main()

"""Held-out inpainting PSNR/MSE of a trained run, with the baselines measured in the same run.

    python eval/evaluate.py --run runs/celeba32
    python eval/evaluate.py --run runs/celeba32 --ablation runs/celeba32_pixel   # + the pixel-head rows
    python eval/evaluate.py --run runs/celeba32 --data.root ~/data/celeba_test --split test

Prints the table, then writes RUN_DIR/eval/metrics.json and metrics.md, which record the data root,
split and number of images measured. A partial or foreign evaluation (--limit, a split other than the
run's, another --seed, another --data.root) writes its own files, e.g. metrics_val_limit8.json, and
a result file that measured more (more images, another data root, an ablation or scales this run
lacks) is replaced only with --replace.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.across.rules import MAX_SUPERSAMPLE
from hypersiren.cli import add_run_options, exits_cleanly, float_in, int_in, parse_before_imports, program

SCALES = (2.0, 2.5, 3.0, 4.0)
LARGEST_TRUTH = 128  # px: larger "truths" would be CelebA's 178 px crops upsampled
CELEBA_CROP = 178  # px: the side of CelebA's standard centre crop, the finest truth there is


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_run_options(parser)
    parser.add_argument(
        "--train-data-root",
        help="folder of the training split, for the mean-image and data-driven baselines (default: the run's)",
    )
    parser.add_argument("--split", help="held-out split (default: the run's data.eval_split)")
    parser.add_argument(
        "--data.cache",
        dest="data_cache",
        default="",
        help="folder of decoded splits, memory-mapped, so that the next evaluation starts in seconds, e.g. "
        "~/.cache/hypersiren (default: none, every split decoded into memory; the run's own data.cache is not used)",
    )
    parser.add_argument("--limit", type=int_in(1), help="evaluate on the first N held-out images only")
    parser.add_argument("--out", help="folder for the metrics files (default: RUN_DIR/eval)")
    parser.add_argument(
        "--ablation", help="another run (e.g. model.decoder=pixel, trained alike) scored beside, on the same masks"
    )
    parser.add_argument(
        "--scales",
        type=float_in(1, 16),
        nargs="+",
        help="render scales checked against the true larger images (datasets with larger originals; default: "
        f"those of {SCALES} that stay within {LARGEST_TRUTH} px, the size CelebA's 178 px crops hold)",
    )
    parser.add_argument(
        "--supersample",
        type=int,
        choices=range(1, MAX_SUPERSAMPLE + 1),
        metavar=f"{{1..{MAX_SUPERSAMPLE}}}",
        help="HyperSiren's pixels as the mean of supersample² points over their area (1: centre points; "
        "default: the run's, 2 where it was trained between pixel centres)",
    )
    parser.add_argument(
        "--replace", action="store_true", help="replace a result file even if it measured more than this evaluation"
    )
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from hypersiren.across.baseline_fill import CLASSICAL_FILLS, classical_fill
from hypersiren.across.checkpoint import load_run
from hypersiren.across.config import DataConfig, RunConfig, command_line_root
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import dataset_root, load_images, model_space
from hypersiren.across.evaluation import (
    METRICS,
    evaluate_inpainting,
    evaluate_scales,
    fit_data_priors,
    inpainting_table,
    method_labels,
    require_informative,
    require_not_fuller,
    root_tag,
    scale_settings,
    scales_table,
    seeded_masks,
)
from hypersiren.across.model import HyperSiren
from hypersiren.across.priors import DataPriors
from hypersiren.across.series import ucr_split
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import ConfigError
from hypersiren.figures import (
    MISSING_LEGEND,
    context_image,
    plot_psnr_vs_context,
    save_figure,
    save_labeled_grid,
    series_figure,
)
from hypersiren.results import markdown_table, write_results


@exits_cleanly()
def main() -> None:
    args = parse_args()
    config, model = load_run(args.run, args.device, data_cache=args.data_cache)
    dims, size = config.model.dims, config.data.image_size
    scales = chosen_scales(args.scales, config)
    ablation = load_ablation(args.ablation, config, args.device) if args.ablation else None
    split = args.split or config.data.eval_split
    # The evaluated split may live apart from the training images (a separate test folder): one root each.
    train_data, data = reading_from(config.data, args.train_data_root), reading_from(config.data, args.data_root)
    # the mean image and the data-driven priors learn from the images the run learned from (data.train_limit)
    train_signals = model_space(load_images(train_data, "train", limit=train_data.train_limit or None))
    images = load_images(data, split, limit=args.limit)
    require_informative(images, source=f"{data.root} ({split})")
    out_dir = Path(args.out or Path(args.run) / "eval")
    if out_dir.exists() and not out_dir.is_dir():  # before the minutes of evaluation
        raise ConfigError(f"--out {out_dir} is a file, not a folder: name a folder for the metrics files")
    tag = None if dataset_root(data) == dataset_root(config.data) else root_tag(data.root)
    name = results_name(split, config.data.eval_split, args.limit, args.seed, args.supersample, root_tag=tag)
    measured = {
        "run": args.run,
        "dataset": config.data.dataset,
        "data_root": data.root,
        "train_data_root": train_data.root,  # of the mean image and the data-driven priors
        "split": split,
        "num_images": len(images),
        "image_size": size,
        "seed": args.seed,
        "ablation": args.ablation,
        "supersample": args.supersample or model.supersample,
    }
    if not args.replace:  # before the minutes of evaluation
        require_not_fuller(out_dir / f"{name}.json", measured, scales=[f"{scale:g}" for scale in scales])
    settings = protocol_settings(images.shape[2:])
    print(f"Fitting the data-driven priors to {len(train_signals)} training signals, settings chosen on a fold of them")
    priors = fit_data_priors(train_signals, settings, seed=args.seed).to(args.device)
    mean_image = train_signals.mean(dim=0)
    kwargs = {"seed": args.seed, "ablation": ablation, "supersample": args.supersample, "progress": True}
    results = evaluate_inpainting(model, images, mean_image, settings, priors=priors, **kwargs)
    summary = measured | {"priors": priors.choices, "results": results}
    what = f"{len(images)} images, {size}x{size}" if dims == 2 else f"{len(images)} series of {size} samples"
    title = f"{config.data.dataset} {split}, {what}"
    tables = f"### {title}\n\n{'Images' if dims == 2 else 'Series'} of {data.root}, seed {args.seed}.\n\n"
    tables += "\n\n".join(inpainting_table(results, metric, dims) for metric in METRICS) + "\n"
    tables += "\n" + priors_table(priors.choices) + "\n"
    print(tables)  # before writing: a full disk or a read-only run folder must not lose the evaluation
    write_results(summary, tables, out_dir, name)  # kept if the scales part below is interrupted
    written = [f"{name}.json", f"{name}.md", f"{name}_psnr_vs_context.png"]
    labels = {method: label for method, label in method_labels(dims).items() if method in results[settings[0]]}
    points = "pixels (of the image's H·W)" if dims == 2 else f"samples (of {size})"
    plot_psnr_vs_context(results, labels, out_dir / written[-1], title=title, points=points)
    if dims == 1:
        written.append(f"{name}_series.png")
        save_series_figure(model, priors, images[:4], settings, out_dir / written[-1], seed=args.seed)
    if scales:
        high = {
            scale: load_images(replace(data, image_size=round(scale * size)), split, args.limit) for scale in scales
        }
        summary["scales"] = evaluate_scales(model, images, high, **kwargs)
        scale_tables = "".join(f"\n{scales_table(by, size, at, dims)}\n" for at, by in summary["scales"].items())
        print(scale_tables)
        write_results(summary, tables + scale_tables, out_dir, name)
        if dims == 2:
            written.append(f"{name}_scale_{max(scales):g}x.png")
            save_scales_figure(model, ablation, images[:3], high[max(scales)][:3], out_dir / written[-1], args.seed)
    print(f"wrote {', '.join(written)} to {out_dir}")


def chosen_scales(asked: list[float] | None, config: RunConfig) -> list[float]:
    """The render scales to score: those asked, or ``default_scales``; none for CIFAR-10 (32x32 originals). An
    asked scale whose truth would exceed the originals (CelebA's 178 px crops, a series' own samples) is refused:
    that "truth" would itself be upsampled."""
    if config.data.dataset == "cifar10":
        return []
    dims, size = config.model.dims, config.data.image_size
    largest = original_length(config.data) if dims == 1 else LARGEST_TRUTH
    finest = {"celeba": CELEBA_CROP, "ucr": largest}.get(config.data.dataset)
    too_fine = [scale for scale in asked or [] if finest is not None and round(scale * size) > finest]
    if too_fine:
        raise ConfigError(
            f"--scales {too_fine[0]:g} renders {round(too_fine[0] * size)} px, beyond the {finest} of the originals: "
            f"its truth would be upsampled; give scales up to {finest / size:.3g}"
        )
    return asked or default_scales(size, largest, dims == 1)


def priors_table(choices: dict[str, dict[str, dict[str, float]]]) -> str:
    """The data-driven baselines' settings of each context setting, as chosen on the training fold."""
    rows = [
        {"Data-driven baseline settings (chosen on a training fold)": method}
        | {setting: _setting_cell(chosen[method]) for setting, chosen in choices.items()}
        for method in DataPriors.METHODS
    ]
    return markdown_table(rows)


def _setting_cell(chosen: dict[str, float]) -> str:
    if "components" in chosen:
        return f"k={chosen['components']}, noise ×{chosen['noise_scale']:g}"
    return f"k={chosen['k']}"


def load_ablation(run_dir: str, config: RunConfig, device: str) -> HyperSiren:
    """The model of ``run_dir``, scored beside the run's: refused unless trained on the same dataset at the same
    size, since a row beside the run's reads as a like-for-like comparison."""
    ablation_config, model = load_run(run_dir, device)
    theirs, ours = ablation_config.data, config.data
    if (theirs.dataset, theirs.image_size) != (ours.dataset, ours.image_size):
        raise ConfigError(
            f"--ablation {run_dir} was trained on {theirs.dataset} {theirs.image_size}x{theirs.image_size}, the run on "
            f"{ours.dataset} {ours.image_size}x{ours.image_size}: compare runs trained alike"
        )
    return model


@torch.no_grad()
def save_scales_figure(
    model: HyperSiren, ablation: HyperSiren | None, low: torch.Tensor, high: torch.Tensor, path: Path, seed: int
) -> None:
    """Rows: each image from all its pixels, then from 100; columns: the input (nearest), the bicubic
    baselines, HyperSiren rendered at the truth's size, the truth. ``low``/``high`` uint8."""
    size = tuple(high.shape[-2:])
    image = to_model_space(low).to(next(model.parameters()).device)
    truth = to_unit_range(to_model_space(high)).to(image.device)
    rows, row_labels = [], []
    for setting in scale_settings(low.shape[2:]):
        mask = seeded_masks(setting, len(low), low.shape[2:], seed=seed).to(image.device)
        given = image if setting == "full" else classical_fill("biharmonic", image, mask)
        columns = [
            F.interpolate(context_image(to_unit_range(image), mask), size=size, mode="nearest"),
            to_unit_range(F.interpolate(given, size=size, mode="bicubic", align_corners=False)),
        ]
        if ablation is not None:
            completion = F.interpolate(ablation.inpaint(image, mask), size=size, mode="bicubic", align_corners=False)
            columns.append(to_unit_range(completion))
        columns += [to_unit_range(model.inpaint(image, mask, size=size)), truth]
        rows.append(torch.stack(columns, dim=1))  # (N, columns, C, H, W)
        row_labels += [f"{'all' if setting == 'full' else setting} px" for _ in range(len(low))]
    tiles = torch.cat(rows).flatten(0, 1)
    height, width = low.shape[-2:]
    labels = [f"input {height}×{width}", "bicubic (100 px:\nof biharmonic fill)"]
    labels += ["pixel U-Net + bicubic"] if ablation is not None else []
    labels += [f"HyperSiren at {size[0]}×{size[1]}", f"truth {size[0]}×{size[1]}"]
    save_labeled_grid(tiles, path, column_labels=labels, row_labels=row_labels, legend=MISSING_LEGEND)


def default_scales(size: int, largest: int, native: bool) -> list[float]:
    """The render scales of ``SCALES`` whose truth stays within ``largest`` px or samples; with ``native`` (series,
    whose originals are the finest truth there is) also the originals' own rate, unless a scale already hits it."""
    scales = [scale for scale in SCALES if scale * size <= largest]
    if native and largest not in (round(scale * size) for scale in scales):
        scales.append(largest / size)
    return scales


def original_length(data: DataConfig) -> int:
    """The samples of a series dataset's originals, the finest truth there is."""
    return ucr_split(data.root, "train").shape[-1]


@torch.no_grad()
def save_series_figure(
    model: HyperSiren, priors: DataPriors, series: torch.Tensor, settings: tuple[str, ...], path: Path, seed: int
) -> None:
    """Held-out series completed from the sparse settings (1% and 10%): observed samples, HyperSiren, the best
    baseline (classical or data-driven) of the figure's own series, and the truth, one panel per series and setting."""
    signal = series.to(next(model.parameters()).device)
    truths, masks, predictions, labels = [], [], {"HyperSiren": [], "best baseline": []}, []
    for setting in settings[:2]:
        mask = seeded_masks(setting, len(series), series.shape[2:], seed=seed).to(signal.device)
        fills = {method: classical_fill(method, signal, mask) for method in CLASSICAL_FILLS[1]}
        fills |= {method: priors.fill(method, setting, signal, mask) for method in priors.METHODS}
        best = max(fills, key=lambda method: float(psnr(to_unit_range(fills[method]), to_unit_range(signal)).mean()))
        truths.append(signal), masks.append(mask)
        predictions["HyperSiren"].append(model.inpaint(signal, mask))
        predictions["best baseline"].append(fills[best])
        labels += [f"{setting} of {series.shape[-1]} samples\n(baseline: {best})" for _ in range(len(series))]
    figure = series_figure(
        to_unit_range(torch.cat(truths)),
        torch.cat(masks),
        {label: to_unit_range(torch.cat(rows)) for label, rows in predictions.items()},
        row_labels=labels,
    )
    save_figure(figure, path)


def reading_from(config: DataConfig, root: str | None) -> DataConfig:
    """``config`` reading from ``root``, a command-line folder, when one is given."""
    return replace(config, root=command_line_root(root)) if root else config


def results_name(
    split: str,
    eval_split: str,
    limit: int | None,
    seed: int,
    supersample: int | None = None,
    root_tag: str | None = None,
) -> str:
    """``metrics`` for the full held-out evaluation; a partial one is named by what makes it partial,
    e.g. ``metrics_val_limit8``, and one of another data root by its ``root_tag`` (``evaluation.root_tag``),
    e.g. ``metrics_root-celeba_test-1a2b3c``, so it never replaces the full one."""
    parts = ["metrics"]
    if split != eval_split or limit:
        parts.append(split)
    if limit:
        parts.append(f"limit{limit}")
    if seed != 0:
        parts.append(f"seed{seed}")
    if supersample is not None:
        parts.append(f"supersample{supersample}")
    if root_tag is not None:
        parts.append(root_tag)
    return "_".join(parts)


if __name__ == "__main__":
    main()

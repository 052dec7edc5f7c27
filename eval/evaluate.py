"""Held-out inpainting PSNR/MSE of a trained run, with the baselines measured in the same run.

    python eval/evaluate.py --run runs/celeba32
    python eval/evaluate.py --run runs/celeba32 --data.root ~/data/celeba_test --split test

Prints the table, then writes RUN_DIR/eval/metrics.json and metrics.md. A partial evaluation
(--limit, a split other than the run's, another --seed) writes its own files, e.g.
metrics_val_limit8.json, and never replaces the full one.
"""

import argparse
import dataclasses
from pathlib import Path

from hypersiren.across.checkpoint import load_run
from hypersiren.across.context import CONTEXT_SETTINGS
from hypersiren.across.data import DataConfig, command_line_root, load_images
from hypersiren.across.evaluation import (
    METHODS,
    METRICS,
    evaluate_inpainting,
    evaluate_superresolution,
    inpainting_table,
    superresolution_table,
)
from hypersiren.cli import add_run_options, exits_cleanly, program
from hypersiren.core.pixels import to_model_space
from hypersiren.figures import plot_psnr_vs_context
from hypersiren.results import write_results


def positive(text: str) -> int:
    """An argparse type: a count of at least 1 (``--limit 0`` would evaluate nothing)."""
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return int(text)


@exits_cleanly()
def main() -> None:
    parser = program(__doc__)
    add_run_options(parser)
    parser.add_argument(
        "--train-data-root", help="folder of the training split, for the mean-image baseline (default: the run's)"
    )
    parser.add_argument("--split", help="held-out split (default: the run's data.eval_split)")
    parser.add_argument("--limit", type=positive, help="evaluate on the first N held-out images only")
    parser.add_argument("--out", help="folder for the metrics files (default: RUN_DIR/eval)")
    args = parser.parse_args()

    config, model = load_run(args.run, args.device)
    split = args.split or config.data.eval_split
    # The evaluated split may live apart from the training images (a separate test folder): one root each.
    mean_image = to_model_space(load_images(reading_from(config.data, args.train_data_root), "train")).mean(dim=0)
    images = load_images(reading_from(config.data, args.data_root), split, limit=args.limit)
    results = evaluate_inpainting(model, images, mean_image, CONTEXT_SETTINGS, seed=args.seed, progress=True)

    summary = {
        "dataset": config.data.dataset,
        "split": split,
        "num_images": len(images),
        "image_size": config.data.image_size,
        "seed": args.seed,
        "results": results,
    }
    title = f"{config.data.dataset} {split}, {len(images)} images, {config.data.image_size}x{config.data.image_size}"
    tables = f"### {title}\n\n" + "\n\n".join(inpainting_table(results, metric) for metric in METRICS) + "\n"
    if config.data.dataset != "cifar10":  # CIFAR-10's originals are 32x32: no higher-resolution truth
        high_data = reading_from(config.data, args.data_root)
        high = load_images(
            dataclasses.replace(high_data, image_size=2 * config.data.image_size), split, limit=args.limit
        )
        summary["superresolution_2x"] = evaluate_superresolution(model, images, high)
        tables += "\n" + superresolution_table(summary["superresolution_2x"], config.data.image_size) + "\n"
    print(tables)  # before writing: a full disk or a read-only run folder must not lose the evaluation
    out_dir = Path(args.out or Path(args.run) / "eval")
    name = results_name(split, eval_split=config.data.eval_split, limit=args.limit, seed=args.seed)
    write_results(summary, tables, out_dir, name)
    plot_psnr_vs_context(results, METHODS, out_dir / f"{name}_psnr_vs_context.png", title=title)
    print(f"wrote {out_dir / name}.json and .md, {out_dir / name}_psnr_vs_context.png")


def reading_from(config: DataConfig, root: str | None) -> DataConfig:
    """``config`` reading from ``root``, a command-line folder, when one is given."""
    return dataclasses.replace(config, root=command_line_root(root)) if root else config


def results_name(split: str, eval_split: str, limit: int | None, seed: int) -> str:
    """``metrics`` for the full held-out evaluation; a partial one is named by what makes it partial,
    e.g. ``metrics_val_limit8``, so it never replaces the full one."""
    parts = ["metrics"]
    if split != eval_split or limit:
        parts.append(split)
    if limit:
        parts.append(f"limit{limit}")
    if seed != 0:
        parts.append(f"seed{seed}")
    return "_".join(parts)


if __name__ == "__main__":
    main()

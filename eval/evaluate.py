"""Held-out inpainting PSNR/MSE of a trained run, with the baselines measured in the same run.

    python eval/evaluate.py --run runs/celeba32

Writes RUN_DIR/eval/metrics.json and metrics.md and prints the table.
"""

import argparse
import dataclasses
from pathlib import Path

import torch

from hypersiren.checkpoint import load_run
from hypersiren.context import CONTEXT_SETTINGS
from hypersiren.data import load_images, to_model_space
from hypersiren.evaluation import (
    METHODS,
    METRICS,
    evaluate_inpainting,
    evaluate_superresolution,
    markdown_table,
    superresolution_table,
)
from hypersiren.figures import plot_psnr_vs_context
from hypersiren.report import write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory written by train/train.py")
    parser.add_argument("--data-root", help="dataset folder, if it moved since training")
    parser.add_argument("--split", help="held-out split (default: the run's data.eval_split)")
    parser.add_argument("--limit", type=int, help="evaluate on the first N held-out images only")
    parser.add_argument("--seed", type=int, default=0, help="seed of the context masks")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    config, model = load_run(args.run, args.device, args.data_root)
    split = args.split or config.data.eval_split
    mean_image = to_model_space(load_images(config.data, "train")).mean(dim=0)  # (3, S, S)
    images = load_images(config.data, split, limit=args.limit)
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
    tables = f"### {title}\n\n" + "\n\n".join(markdown_table(results, metric) for metric in METRICS) + "\n"
    if config.data.dataset != "cifar10":  # CIFAR-10's originals are 32x32: no higher-resolution truth
        high_data = dataclasses.replace(config.data, image_size=2 * config.data.image_size)
        high = load_images(high_data, split, limit=args.limit)
        summary["superresolution_2x"] = evaluate_superresolution(model, images, high)
        tables += "\n" + superresolution_table(summary["superresolution_2x"], config.data.image_size) + "\n"
    print(tables)
    out_dir = Path(args.run) / "eval"
    write_results(summary, tables, out_dir, "metrics")
    plot_psnr_vs_context(results, METHODS, out_dir / "psnr_vs_context.png", title=title)
    print(f"wrote {out_dir / 'metrics'}.json and .md, {out_dir / 'psnr_vs_context.png'}")


if __name__ == "__main__":
    main()

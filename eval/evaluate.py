"""Held-out inpainting PSNR/MSE of a trained run, with the baselines measured in the same run.

    python eval/evaluate.py --run runs/celeba32

Writes RUN_DIR/eval/metrics.json and metrics.md and prints the table.
"""

import argparse
from pathlib import Path

import torch

from hypersiren.checkpoint import load_run
from hypersiren.context import CONTEXT_SETTINGS
from hypersiren.data import load_images, to_model_space
from hypersiren.evaluation import evaluate_inpainting, markdown_table
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
    tables = f"### {title}\n\n{markdown_table(results, 'psnr')}\n\n{markdown_table(results, 'mse')}\n"
    write_results(summary, tables, Path(args.run) / "eval", "metrics")
    print(f"{tables}\nwrote {Path(args.run) / 'eval' / 'metrics'}.json and .md")


if __name__ == "__main__":
    main()

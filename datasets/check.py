"""Verify a dataset root and report its splits: a clear message instead of a failed training run.

    python datasets/check.py --dataset celeba --data-root ../shared/data/celeba
    python datasets/check.py --dataset cifar10 --data-root ~/data/cifar10 --download   # when online
"""

import argparse
import time

from hypersiren.cli import exits_cleanly
from hypersiren.config import validate_data_config
from hypersiren.data import DataConfig, DatasetError, command_line_root, load_images


@exits_cleanly()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["celeba", "cifar10", "folder"], default="celeba")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--download", action="store_true", help="CIFAR-10: fetch torchvision's copy into the root")
    args = parser.parse_args()
    root = command_line_root(args.data_root)
    config = DataConfig(args.dataset, root, args.image_size, download=args.download)
    validate_data_config(config)
    splits = {"celeba": ["train", "val", "test"], "cifar10": ["train", "test"], "folder": ["train", "val"]}[args.dataset]
    for split in splits:
        start = time.perf_counter()
        try:
            images = load_images(config, split)
        except DatasetError as error:
            print(f"{split:>5}: unavailable: {error}")
            continue
        seconds = time.perf_counter() - start
        mean = images.float().mean(dim=(0, 2, 3)).div(255).tolist()
        print(f"{split:>5}: {len(images)} images {tuple(images.shape[1:])}, decoded in {seconds:.1f}s, RGB mean {mean}")


if __name__ == "__main__":
    main()

"""Verify a dataset root and report its splits: a clear message instead of a failed training run.

python datasets/check.py --data.root ../shared/data/celeba
python datasets/check.py --data.dataset cifar10 --data.root ~/data/cifar10 --data.download   # when online
"""

import time

from hypersiren.across.config import validate_data_config
from hypersiren.across.data import DataConfig, DatasetError, command_line_root, load_images
from hypersiren.cli import exits_cleanly, program


@exits_cleanly()
def main() -> None:
    parser = program(__doc__)  # the data.* options of train/train.py
    parser.add_argument("--data.dataset", dest="dataset", choices=["celeba", "cifar10", "folder"], default="celeba")
    parser.add_argument("--data.root", dest="data_root", required=True)
    parser.add_argument("--data.image_size", dest="image_size", type=int, default=32)
    parser.add_argument("--data.download", dest="download", action="store_true", help="CIFAR-10: fetch into the root")
    args = parser.parse_args()
    root = command_line_root(args.data_root)
    config = DataConfig(dataset=args.dataset, root=root, image_size=args.image_size, download=args.download)
    validate_data_config(config)
    splits = {"celeba": ["train", "val", "test"], "cifar10": ["train", "test"], "folder": ["train", "val"]}[
        args.dataset
    ]
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

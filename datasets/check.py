"""Verify a dataset root and report its splits: a clear message instead of a failed training run.
Exits 2 when a split it checks is unusable (by default every split of the dataset; --splits to choose).

python datasets/check.py --data.root ../shared/data/celeba
python datasets/check.py --data.root ../shared/data/celeba --splits train val   # a copy without a test split
python datasets/check.py --data.dataset cifar10 --data.root ~/data/cifar10 --data.download   # when online
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import time

from hypersiren.across.config import validate_data_config
from hypersiren.across.data import DataConfig, command_line_root, load_images
from hypersiren.cli import exits_cleanly, program
from hypersiren.errors import DatasetError

SPLITS = {"celeba": ["train", "val", "test"], "cifar10": ["train", "test"], "folder": ["train", "val"]}


@exits_cleanly()
def main() -> None:
    parser = program(__doc__)  # the data.* options of train/train.py
    parser.add_argument("--data.dataset", dest="dataset", choices=["celeba", "cifar10", "folder"], default="celeba")
    parser.add_argument("--data.root", dest="data_root", required=True)
    parser.add_argument("--data.image_size", dest="image_size", type=int, default=32)
    parser.add_argument("--data.download", dest="download", action="store_true", help="CIFAR-10: fetch into the root")
    parser.add_argument("--splits", nargs="+", help="the splits to check (default: all of the dataset's)")
    args = parser.parse_args()
    root = command_line_root(args.data_root)
    config = DataConfig(dataset=args.dataset, root=root, image_size=args.image_size, download=args.download)
    validate_data_config(config)
    splits = args.splits or SPLITS[args.dataset]
    unknown = sorted(set(splits) - set(SPLITS[args.dataset]))
    if unknown:
        parser.error(
            f"--splits: {args.dataset} has no split {unknown[0]!r}; its splits are {', '.join(SPLITS[args.dataset])}"
        )
    unusable = []
    for split in splits:
        start = time.perf_counter()
        try:
            images = load_images(config, split)
        except DatasetError as error:
            print(f"{split:>5}: unavailable: {error}")
            unusable.append(split)
            continue
        seconds = time.perf_counter() - start
        mean = images.float().mean(dim=(0, 2, 3)).div(255).tolist()
        print(f"{split:>5}: {len(images)} images {tuple(images.shape[1:])}, decoded in {seconds:.1f}s, RGB mean {mean}")
    if unusable:
        usable = [split for split in splits if split not in unusable]
        fix = f"fix them (above), or check only the others: --splits {' '.join(usable)}" if usable else "fix the root"
        raise DatasetError(f"{len(unusable)} of {len(splits)} splits unusable ({', '.join(unusable)}): {fix}")


if __name__ == "__main__":
    main()

"""Verify a dataset root and report its splits: a clear message instead of a failed training run.

By default every split of the dataset is checked; one that is absent here (CelebA's test split in
../shared/data/celeba) is named, and the check fails (exit 2) only if what a training needs is missing:
the train split and one held-out split (data.eval_split). With --splits, every split named must be usable.

python datasets/check.py --data.root ../shared/data/celeba
python datasets/check.py --data.root ../shared/data/celeba --splits train val
python datasets/check.py --data.dataset ucr --data.root OSULeaf --data.image_size 128   # a UCR series dataset
python datasets/check.py --data.dataset cifar10 --data.root ~/data/cifar10 --data.download   # when online
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.across.config import FIELD_HELP, DataConfig, command_line_root, validate_data_config
from hypersiren.cli import exits_cleanly, parse_before_imports, program

SPLITS = {
    "celeba": ["train", "val", "test"],
    "cifar10": ["train", "test"],
    "folder": ["train", "val"],
    "ucr": ["train", "test"],
}


def parse_args() -> tuple[argparse.Namespace, DataConfig]:
    """The command line and the data config it names, refused here if they cannot work (an image size out of range,
    a split the dataset lacks)."""
    parser = program(__doc__, device_option=False)  # the data.* options of train/train.py
    parser.add_argument(
        "--data.dataset", dest="dataset", choices=list(SPLITS), default="celeba", help=FIELD_HELP["data.dataset"]
    )
    parser.add_argument("--data.root", dest="data_root", required=True, help=FIELD_HELP["data.root"])
    parser.add_argument(
        "--data.image_size", dest="image_size", type=int, default=32, help=FIELD_HELP["data.image_size"]
    )
    parser.add_argument("--data.download", dest="download", action="store_true", help=FIELD_HELP["data.download"])
    parser.add_argument("--splits", nargs="+", help="the splits that must be usable (default: all of the dataset's)")
    args = parser.parse_args()
    root = command_line_root(args.data_root)
    config = DataConfig(dataset=args.dataset, root=root, image_size=args.image_size, download=args.download)
    validate_data_config(config)
    unknown = sorted(set(args.splits or ()) - set(SPLITS[args.dataset]))
    if unknown:
        parser.error(
            f"--splits: {args.dataset} has no split {unknown[0]!r}; its splits are {', '.join(SPLITS[args.dataset])}"
        )
    return args, config


parse_before_imports(parse_args, __name__)

import time

import torch

from hypersiren.across.data import load_images
from hypersiren.errors import DatasetError


@exits_cleanly()
def main() -> None:
    args, config = parse_args()
    splits = args.splits or SPLITS[args.dataset]
    usable = [split for split in splits if check_split(config, split)]
    unusable = [split for split in splits if split not in usable]
    if not unusable:
        return
    if args.splits or not usable:
        fix = f"fix them (above), or check only the others: --splits {' '.join(usable)}" if usable else "fix the root"
        raise DatasetError(f"{len(unusable)} of {len(splits)} splits unusable ({', '.join(unusable)}): {fix}")
    if "train" not in usable or usable == ["train"]:
        needed = "the train split" if "train" not in usable else "a held-out split (data.eval_split)"
        raise DatasetError(f"a training needs {needed}; unusable here: {', '.join(unusable)} (above): fix the root")
    absent, held_out = ", ".join(unusable), usable[1]
    print(f"absent or unusable here: {absent} (above); train on train, hold out {held_out} (data.eval_split)")


def check_split(config: DataConfig, split: str) -> bool:
    """Load ``split`` and print what it holds (count, shape, decoding time, channel means), or why it cannot be
    loaded; return whether it could."""
    start = time.perf_counter()
    try:
        signals = load_images(config, split)
    except DatasetError as error:
        print(f"{split:>5}: unavailable: {error}")
        return False
    seconds = time.perf_counter() - start
    means = signals.float().flatten(2).mean(dim=(0, 2))  # one per channel
    if signals.dtype == torch.uint8:
        what, means = "images", means / 255
    else:
        what = "series"  # in [-1, 1]
    shown = ", ".join(f"{mean:.3f}" for mean in means.tolist())
    shape = tuple(signals.shape[1:])
    print(f"{split:>5}: {len(signals)} {what} {shape}, read in {seconds:.1f}s, channel means {shown}")
    return True


if __name__ == "__main__":
    main()

"""Pack CelebA into a compact copy that travels with the repository to a machine without ``../shared``.

    python datasets/pack.py                       # ../shared/data/celeba -> datasets/packed/celeba128 (10.4 MiB)
    python eval/gpu_check.py                      # reads it from there

The copy keeps CelebA's own layout (``img_align_celeba/`` and ``list_eval_partition.txt``), so every
program reads it as ``--data.dataset celeba --data.root datasets/packed/celeba128`` with no other
code path. Each image is the standard 178x178 centre crop, resized (antialiased) to ``--size`` and
stored as WebP: a lossy copy, like shared CIFAR-10's JPEGs, so treat the packed pixels as the ground
truth and compare models on the same copy. Smaller sizes are resized from it by the data pipeline.
It is small on purpose: a copy of the repository sent to a GPU machine may be limited in size (some lenders
carry at most 64 MiB with the working tree), and this copy must fit beside it.

A ``pack.json`` naming this program marks the copy as its own: packing again replaces a folder that holds one,
and refuses any other non-empty --out (a folder of the user's, the --root itself) before packing.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.cli import exits_cleanly, int_in, parse_before_imports, program


def parse_args() -> argparse.Namespace:
    parser = program(__doc__, device_option=False)
    parser.add_argument("--root", default="../shared/data/celeba", help="the CelebA folder to pack")
    parser.add_argument("--size", type=int_in(2, 1024), default=128, help="side of the packed square images")
    parser.add_argument("--quality", type=int_in(1, 100), default=75, help="WebP quality (100: largest, sharpest)")
    parser.add_argument("--out", default=None, help="the packed folder (default datasets/packed/celeba<size>)")
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

import shutil
import tempfile
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from hypersiren.across.config import DataConfig
from hypersiren.across.data import dataset_root
from hypersiren.across.images import CELEBA_SPLITS, celeba_files, decode_image, square_resize
from hypersiren.errors import ConfigError
from hypersiren.results import require_own_folder, write_json

PACKED = Path(__file__).resolve().parent / "packed"
PROGRAM, MARKER = "datasets/pack.py", "pack.json"  # what a packed copy holds that names its writer


@exits_cleanly()
def main() -> None:
    args = parse_args()
    root = dataset_root(DataConfig(root=args.root))
    out = Path(args.out) if args.out else PACKED / f"celeba{args.size}"
    require_packed_output(out, root)  # before the minutes of packing
    splits = {split: celeba_files(root, split) for split in ("train", "val")}
    files = [file for split_files in splits.values() for file in split_files]
    lines = [
        f"{file.stem}.webp {CELEBA_SPLITS[split]}" for split, split_files in splits.items() for file in split_files
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as staging:  # a half-written copy never takes out's name
        images = Path(staging) / "img_align_celeba"
        images.mkdir()
        for file in tqdm(files, desc=f"packing {len(files)} images at {args.size}x{args.size}", unit="image"):
            pixels = square_resize(decode_image(file), args.size)  # uint8 (3, size, size)
            Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(images / f"{file.stem}.webp", quality=args.quality)
        (Path(staging) / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
        write_json({"program": PROGRAM, "size": args.size, "quality": args.quality}, Path(staging) / MARKER)
        if out.exists():
            shutil.rmtree(out)
        Path(staging).rename(out)
        Path(staging).mkdir()  # for TemporaryDirectory's own clean-up
    size = sum(file.stat().st_size for file in out.rglob("*"))
    print(f"{out}: {len(files)} images, {size / 2**20:.1f} MiB")


def require_packed_output(out: Path, root: Path) -> None:
    """``ConfigError`` unless ``out`` may become the packed copy of ``root``: new, empty or an earlier packed copy
    (``results.require_own_folder``), and apart from ``root``, since the copy replaces ``out`` whole."""
    out_path, root_path = out.resolve(), root.resolve()
    if out_path == root_path or root_path in out_path.parents or out_path in root_path.parents:
        raise ConfigError(
            f"--out {out} is, or lies inside or around, the --root {root} being packed: choose a folder apart from it"
        )
    require_own_folder(out, PROGRAM, marker=MARKER, what=f"{MARKER} of a packed copy")


if __name__ == "__main__":
    main()

"""Pack CelebA into a compact copy that travels with the repository to a machine without ``../shared``.

    python datasets/pack.py                       # ../shared/data/celeba -> datasets/packed/celeba128 (10.4 MiB)
    python eval/gpu_check.py                      # reads it from there

The copy keeps CelebA's own layout (``img_align_celeba/`` and ``list_eval_partition.txt``), so every
program reads it as ``--data.dataset celeba --data.root datasets/packed/celeba128`` with no other
code path. Each image is the standard 178x178 centre crop, resized (antialiased) to ``--size`` and
stored as WebP: a lossy copy, like shared CIFAR-10's JPEGs, so treat the packed pixels as the ground
truth and compare models on the same copy. Smaller sizes are resized from it by the data pipeline.
A device run carries at most 64 MiB with the working tree, which this copy must fit beside.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import shutil
import tempfile
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from hypersiren.across.data import DataConfig, dataset_root
from hypersiren.across.images import CELEBA_SPLITS, celeba_files, decode_image, square_resize
from hypersiren.cli import exits_cleanly, int_in, program

PACKED = Path(__file__).resolve().parent / "packed"


@exits_cleanly()
def main() -> None:
    parser = program(__doc__)
    parser.add_argument("--root", default="../shared/data/celeba", help="the CelebA folder to pack")
    parser.add_argument("--size", type=int_in(2, 1024), default=128, help="side of the packed square images")
    parser.add_argument("--quality", type=int_in(1, 100), default=75, help="WebP quality (100: largest, sharpest)")
    parser.add_argument("--out", default=None, help="the packed folder (default datasets/packed/celeba<size>)")
    args = parser.parse_args()
    root = dataset_root(DataConfig(root=args.root))
    out = Path(args.out) if args.out else PACKED / f"celeba{args.size}"
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
        if out.exists():
            shutil.rmtree(out)
        Path(staging).rename(out)
        Path(staging).mkdir()  # for TemporaryDirectory's own clean-up
    size = sum(file.stat().st_size for file in out.rglob("*"))
    print(f"{out}: {len(files)} images, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

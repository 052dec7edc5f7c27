"""How much of the model's detail to keep in a photo completed above its size, chosen on training images.

    python eval/fit_detail.py --run pretrained/celeba64

Above the model's size a completion is the model's rendering corrected by the observed pixels
(hypersiren/across/user_images.py). Where the observed pixels are dense against the model's cells, biharmonic of
the photo between them knows more than the model's detail does. This program completes training images (never the
held-out split) at each --sizes N from each --shares of their pixels, scores the blends w x corrected +
(1 - w) x biharmonic for w = 0, 0.1, ..., 1, and writes the best w at each density (observed pixels per model cell)
to RUN_DIR/detail_weights.json, which eval/inpaint.py, eval/demo.py and eval/own_size.py use.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.cli import add_run_options, exits_cleanly, float_in, int_in, parse_before_imports, program

DEFAULT_SIZES = [128, 256]
DEFAULT_SHARES = [0.01, 0.03, 0.1, 0.3]


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_run_options(parser)
    parser.add_argument(
        "--sizes", type=int_in(8, MAX_PHOTO_SIDE), nargs="+", default=DEFAULT_SIZES, help="output sides N to fit at"
    )
    parser.add_argument(
        "--shares", type=float_in(1e-4, 0.9), nargs="+", default=DEFAULT_SHARES, help="observed shares of the N² pixels"
    )
    parser.add_argument("--limit", type=int_in(1), default=24, help="training images completed at each size")
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

from dataclasses import replace
from pathlib import Path

import torch

from hypersiren.across.checkpoint import load_run, require_image_run
from hypersiren.across.data import load_images
from hypersiren.across.user_images import DETAIL_FILE, fit_detail_weights
from hypersiren.errors import ConfigError
from hypersiren.results import markdown_table, require_writable


@exits_cleanly()
@torch.no_grad()
def main() -> None:
    args = parse_args()
    config, model = load_run(args.run, device=args.device, data_root=args.data_root)
    require_image_run(config, args.run, program="eval/fit_detail.py")
    require_writable(Path(args.run) / DETAIL_FILE, option="--run")
    side = config.data.image_size
    if min(args.sizes) <= side:
        raise ConfigError(f"--sizes must be above the model's {side}x{side}: below it nothing is blended")
    images = {n: load_images(replace(config.data, image_size=n), "train", limit=args.limit) for n in args.sizes}
    detail, measured = fit_detail_weights(model, images, tuple(args.shares), model_side=side, seed=args.seed)
    rows = [
        {
            "N": row["side"],
            "observed px": row["observed"],
            "per model cell": f"{row['density']:.3g}",
            "weight": f"{row['weight']:.1f}",
            "PSNR (dB)": f"{row['psnr']:.2f}",
            "all detail": f"{row['psnr_all_detail']:.2f}",
            "biharmonic": f"{row['psnr_biharmonic']:.2f}",
        }
        for row in measured
    ]
    print(markdown_table(rows))
    detail.save(args.run)
    print(f"wrote {Path(args.run) / DETAIL_FILE}: {len(images)} sizes x {len(args.shares)} shares, training images")


if __name__ == "__main__":
    main()

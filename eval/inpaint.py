"""PNG figures of a trained run: inpainting at each context size, and 4x-resolution rendering.

    python eval/inpaint.py --run runs/celeba32 --num-images 8

Writes RUN_DIR/figures/inpaint_<setting>.png (rows: context | prediction, observed pixels
pasted | truth), inpaint_overview.png (10, 100 and 1000 pixels beside scikit-image's biharmonic fill)
and RUN_DIR/figures/superres_<factor>x.png (rows: truth, nearest-upsampled | rendered at factor x).
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.checkpoint import load_run
from hypersiren.across.context import CONTEXT_SETTINGS
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import seeded_masks
from hypersiren.cli import add_run_options, exits_cleanly, program
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.figures import comparison_grid, context_image, save_labeled_grid

OVERVIEW_SETTINGS = ("10", "100", "1000")


@exits_cleanly()
@torch.no_grad()
def main() -> None:
    parser = program(__doc__)
    add_run_options(parser)
    parser.add_argument("--num-images", type=int, default=8)
    parser.add_argument("--factor", type=int, default=4, help="super-resolution factor of the continuous render")
    parser.add_argument("--display-scale", type=int, default=4, help="nearest-neighbour enlargement of the PNGs")
    args = parser.parse_args()

    config, model = load_run(args.run, device=args.device, data_root=args.data_root)
    images = load_images(config.data, config.data.eval_split, limit=args.num_images)
    image = to_model_space(images).to(args.device)
    count, _, height, width = image.shape
    truth = to_unit_range(image)
    out_dir = Path(args.run) / "figures"
    out_dir.mkdir(exist_ok=True)

    overview_tiles, overview_labels = [], []
    for setting in CONTEXT_SETTINGS:
        mask = seeded_masks(setting, count=count, height=height, width=width, seed=args.seed).to(args.device)
        prediction = to_unit_range(torch.where(mask, image, model.inpaint(image, mask)))  # observed pixels pasted
        save_image(
            enlarge(comparison_grid(truth, mask, prediction), args.display_scale), out_dir / f"inpaint_{setting}.png"
        )
        if setting in OVERVIEW_SETTINGS:
            biharmonic = to_unit_range(classical_fill("biharmonic", image, mask))
            overview_tiles += [context_image(truth, mask), prediction, biharmonic]
            overview_labels += [f"{setting} px", "HyperSiren", "biharmonic"]
    tiles = torch.stack([*overview_tiles, truth], dim=1).flatten(0, 1)  # row-major: one image per row
    save_labeled_grid(tiles, out_dir / "inpaint_overview.png", column_labels=[*overview_labels, "truth"])

    size = (args.factor * height, args.factor * width)
    mask = seeded_masks("full", count=count, height=height, width=width, seed=args.seed).to(args.device)
    rendered = to_unit_range(model.inpaint(image, mask, size=size))
    upsampled = F.interpolate(truth, size=size, mode="nearest")
    pairs = torch.stack([upsampled, rendered], dim=1).flatten(0, 1)
    grid = make_grid(pairs, nrow=2, padding=2, pad_value=1.0)
    save_image(enlarge(grid, max(1, args.display_scale // args.factor)), out_dir / f"superres_{args.factor}x.png")
    print(f"wrote {len(CONTEXT_SETTINGS) + 1} figures to {out_dir}")


def enlarge(grid: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour upscaling of a ``(C, H, W)`` figure: 32x32 pixels stay visible as pixels."""
    return F.interpolate(grid.unsqueeze(0), scale_factor=scale, mode="nearest").squeeze(0)


if __name__ == "__main__":
    main()

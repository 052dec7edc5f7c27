"""Your photo at its own resolution: held-out images completed at N x N from 1% and 10% of their N² pixels.

    python eval/own_size.py --run pretrained/celeba64 --sizes 64 128 256 --limit 48

Each held-out image is resized from its original to N x N (CelebA's originals are 178 px crops: above 178 the
truth itself is an upsampling, which the table says) and masked there, seeded. Every row completes the same
observed pixels at N x N and keeps them:
- HyperSiren: the model reads every observed pixel (a model cell is the mean of the observed pixels in it), renders
  at N x N and, above its own size, is corrected there by the observed pixels (hypersiren/across/user_images.py),
  its detail weighted against biharmonic's by the density of the observed pixels as the run's detail weights say
  (RUN_DIR/detail_weights.json, chosen on training images by eval/fit_detail.py; without them all of it is kept);
- HyperSiren, all its detail: the corrected rendering alone;
- HyperSiren, uncorrected: the same rendering with the observed pixels pasted;
- biharmonic: scikit-image's inpaint_biharmonic of the N x N image, what a user would run on the photo itself;
- Gaussian prior: the conditional mean of a Gaussian (PCA) prior of the training split at the model's size (its k
  and noise chosen on a fold of the training split for the same density), bicubic to N x N and corrected the same
  way as HyperSiren.
Prints the table, then writes RUN_DIR/eval/own_size.json and own_size.md (or in --out), unless the file there
measured more (more images, another run, data root or seed) and --replace is not given.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.cli import add_run_options, exits_cleanly, int_in, parse_before_imports, program

DENSITIES = {"1%": 0.01, "10%": 0.1}
DEFAULT_SIZES = [64, 128, 256]


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_run_options(parser)
    parser.add_argument(
        "--sizes", type=int_in(8, MAX_PHOTO_SIDE), nargs="+", default=DEFAULT_SIZES, help="output sides N to score"
    )
    parser.add_argument("--limit", type=int_in(1), default=48, help="held-out images scored at each size")
    parser.add_argument("--out", help="folder for own_size.json and own_size.md (default: RUN_DIR/eval)")
    parser.add_argument(
        "--replace", action="store_true", help="replace own_size.json even if it measured more than this evaluation"
    )
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from hypersiren.across.checkpoint import load_run, require_image_run
from hypersiren.across.config import DataConfig
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import load_images, model_space
from hypersiren.across.evaluation import db_cell, fit_data_priors, mean_psnrs, require_not_fuller
from hypersiren.across.model import HyperSiren
from hypersiren.across.priors import DataPriors
from hypersiren.across.user_images import DETAIL_FILE, DetailWeights, complete_at_size
from hypersiren.errors import ConfigError
from hypersiren.results import earlier_result, markdown_table, require_writable, write_results

ROWS = {
    "hypersiren": "HyperSiren (every observed pixel read; above the model's size corrected at N, detail weighted)",
    "all_detail": "HyperSiren, all its detail (corrected at N)",
    "uncorrected": "HyperSiren, uncorrected (observed pixels pasted)",
    "biharmonic": "Biharmonic at N (scikit-image)",
    "gaussian": "Gaussian prior at the model's size (above it: bicubic, corrected at N)",
}


@exits_cleanly()
@torch.no_grad()
def main() -> None:
    args = parse_args()
    config, model = load_run(args.run, device=args.device, data_root=args.data_root)
    require_image_run(config, args.run, program="eval/own_size.py")
    data = config.data  # with --data.root in place of the run's own
    out_dir = Path(args.out or Path(args.run) / "eval")
    require_writable(out_dir / "own_size.json")
    measured = {"run": args.run, "data_root": data.root, "split": data.eval_split, "num_images": args.limit}
    measured |= {"seed": args.seed, "model_side": data.image_size, "sizes": args.sizes}
    if not args.replace:  # before the minutes of evaluation
        require_not_fuller(out_dir / "own_size.json", measured, scales=[])
        saved = earlier_result(out_dir / "own_size.json", "results") or {}
        if set(saved.get("sizes", [])) - set(args.sizes):
            raise ConfigError(
                f"{out_dir / 'own_size.json'} holds a fuller evaluation (sizes {saved['sizes']}, this one "
                f"{args.sizes}): pass --replace to replace it, or --out elsewhere"
            )
    size = data.image_size
    detail = DetailWeights.of_run(args.run)
    if detail is None:
        print(f"{args.run} has no {DETAIL_FILE} (eval/fit_detail.py): all of the model's detail kept at every size")
    measured["detail_weights"] = None if detail is None else detail._asdict()
    model_settings = dict(zip(DENSITIES, protocol_settings((size, size))))  # the same densities at the model's size
    print(f"Fitting the Gaussian prior to the training split at {size}x{size}, settings chosen on a fold of it")
    train = model_space(load_images(data, "train", limit=data.train_limit or None))
    priors = fit_data_priors(train, tuple(model_settings.values()), seed=args.seed).to(args.device)
    results = {}
    for side in args.sizes:
        images = load_images(replace(data, image_size=side), data.eval_split, limit=args.limit)
        densities = dict(zip(protocol_settings((side, side)), DENSITIES))  # {"164": "1%", "1638": "10%"} at 128x128
        settings = {s: model_settings[d] for s, d in densities.items()}
        predict = own_size_predictions(model, priors, settings, size, detail)
        desc = f"{side}x{side}"
        scored = mean_psnrs(
            images, tuple(densities), predict, args.device, args.seed, batch_size=8, progress=True, desc=desc
        )
        results[side] = {densities[setting]: rows for setting, rows in scored.items()}
    summary = measured | {"num_images": len(images), "priors": priors.choices, "results": results}
    table = own_size_table(results, data, len(images), size)
    print(table)
    write_results(summary, table, out_dir, "own_size")
    print(f"wrote {out_dir / 'own_size.md'} and own_size.json")


def own_size_predictions(
    model: HyperSiren, priors: DataPriors, model_settings: dict[str, str], size: int, detail: DetailWeights | None
) -> Callable[[Tensor, Tensor, slice, str], dict[str, tuple[Tensor, Tensor]]]:
    """``mean_psnrs``'s ``predict``: every row of ``ROWS`` from a batch at N x N and its masks; ``model_settings``
    maps each setting at N x N to the prior's at the model's ``size`` (the same density)."""

    def predict(image: Tensor, mask: Tensor, rows: slice, setting: str) -> dict[str, tuple[Tensor, Tensor]]:
        gaussian = partial(priors.fill, "gaussian", model_settings[setting])
        completion = complete_at_size(model, image, mask, model_side=size, prior=gaussian, detail=detail)
        predictions = {
            "hypersiren": completion.hypersiren,
            "all_detail": completion.corrected,
            "uncorrected": torch.where(mask, image, completion.rendered),
            "biharmonic": completion.biharmonic,
            "gaussian": completion.gaussian,
        }
        return {row: (prediction, image) for row, prediction in predictions.items()}

    return predict


def own_size_table(results: dict, data: DataConfig, count: int, size: int) -> str:
    """Rows of ``ROWS``, a column per size and density, the best of each in bold."""
    columns = {f"{side}² {density}": results[side][density] for side in results for density in results[side]}
    best = {column: max(scores[row]["psnr"] for row in ROWS) for column, scores in columns.items()}
    rows = [
        {"PSNR (dB), all pixels": label}
        | {column: db_cell(scores[row]["psnr"], best[column]) for column, scores in columns.items()}
        for row, label in ROWS.items()
    ]
    finest = (
        " (CelebA's originals are 178 px crops: above that the truth is an upsampling)"
        if data.dataset == "celeba"
        else ""
    )
    return (
        f"### {data.dataset} {data.eval_split}, {count} images at their own size N, the model reading {size}x{size}\n\n"
        f"Seeded masks of 1% and 10% of the N² pixels{finest}.\n\n{markdown_table(rows)}\n"
    )


if __name__ == "__main__":
    main()

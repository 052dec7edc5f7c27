"""Fit one photo with one coordinate network: SIREN against ReLU, tanh and ReLU + positional
encoding (the comparison the SIREN paper opens with), then sample the fitted SIREN beyond its
pixel grid: 4x zoom into the centre, 2x extrapolation outside [-1, 1], and 2x super-resolution
scored against the photo's own higher-resolution original.

    python train/fit_image.py --out runs/fit_image                       # paper scale, GPU
    python train/fit_image.py --out runs/fit_image_cpu --size 128 --hidden 128 --steps 300

Writes PSNR curves (CSV + PNG), the comparison table (Markdown + JSON), figures and config.json.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.cli import (
    MAX_FIT_SIZE,
    MIN_FIT_SIZE,
    PHOTOS,
    add_fit_options,
    exits_cleanly,
    int_in,
    parse_before_imports,
    program,
)

# The networks --activations offers (coordinate_mlps.ACTIVATIONS), as the table and figures name them.
LABELS = {"relu": "ReLU", "tanh": "tanh", "relu_pe": "ReLU + P.E.", "siren": "SIREN"}


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_fit_options(parser, steps=1000)
    parser.add_argument("--photo", default="camera", choices=PHOTOS, help="bundled skimage.data photo")
    size = int_in(1, MAX_FIT_SIZE)
    parser.add_argument(
        "--size", type=int_in(MIN_FIT_SIZE, MAX_FIT_SIZE), default=256, help="fit the photo resized to size x size"
    )
    parser.add_argument(
        "--activations",
        nargs="+",
        default=list(LABELS),
        choices=LABELS,
        help="the networks fitted side by side: relu, tanh, relu_pe (ReLU on a positional encoding), siren",
    )
    parser.add_argument("--render-size", type=size, default=1024, help="side of the zoom and extrapolation renders")
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

from pathlib import Path

import torch
import torch.nn.functional as F

from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.figures import (
    display_scale,
    magnitude_for_display,
    plot_curves,
    save_labeled_grid,
    save_png,
    signed_for_display,
)
from hypersiren.fit_runs import require_fit_memory, start_run
from hypersiren.results import write_curves_csv, write_json, write_table
from hypersiren.single.coordinate_mlps import coordinate_mlp, nyquist_frequencies
from hypersiren.single.field_images import derivative_images, render_image
from hypersiren.single.finite_differences import discrete_laplacian, sobel_gradient
from hypersiren.single.fitting import FitConfig, fit_bytes, fit_values, signal_psnr
from hypersiren.single.photos import load_photo


@exits_cleanly()
def main() -> None:
    args = parse_args()
    require_fit_memory(
        fit_bytes(points=args.size**2, hidden=args.hidden, layers=args.layers),
        device=args.device,
        what=f"a fit of {args.size}x{args.size} pixels by {args.layers}x{args.hidden} networks",
    )
    out = start_run(args, program="fit_image")
    image = to_model_space(load_photo(args.photo, args.size)).to(args.device)  # (1, S, S) in [-1, 1]
    config = FitConfig(steps=args.steps, lr=args.lr)

    nets, curves, rows = {}, {}, []
    for activation in args.activations:
        net = coordinate_mlp(  # every network's weights from the same seed
            activation,
            in_features=2,
            hidden_features=args.hidden,
            hidden_layers=args.layers,
            out_features=1,
            num_frequencies=nyquist_frequencies(args.size),
            omega=args.omega,
            seed=args.seed,
        ).to(args.device)
        result = fit_values(net, image, config, progress=LABELS[activation])
        nets[activation], curves[LABELS[activation]] = net, result.psnr
        rows.append(
            {
                "network": LABELS[activation],
                "psnr_db": result.final_psnr,
                "parameters": sum(parameter.numel() for parameter in net.parameters()),
                "seconds": result.seconds,
            }
        )
        print(f"{LABELS[activation]:>12}: {result.final_psnr:6.2f} dB in {args.steps} steps ({result.seconds:.1f} s)")

    title = f"{args.photo} {args.size}px, {args.steps} steps, {args.layers}x{args.hidden} networks, lr {args.lr:g}"
    write_table(rows, out, "activation_comparison", title)
    write_curves_csv(curves, out / "psnr_curves.csv")
    plot_curves(curves, out / "psnr_curves.png")
    save_comparison_figure(image, nets, out / "activation_comparison.png")

    if "siren" in nets:
        beyond = beyond_the_grid(nets["siren"], image, args)
        write_table([beyond], out, "beyond_grid", f"SIREN sampled beyond its {args.size}x{args.size} grid")
        rows.append({"network": "SIREN beyond the grid", **beyond})
    write_json(rows, out / "results.json")


def save_comparison_figure(image: torch.Tensor, nets: dict[str, torch.nn.Module], path: Path) -> None:
    """Columns: ground truth, then each network. Rows: image, gradient magnitude, Laplacian.

    Ground-truth derivatives are the Sobel / 5-point filters of the pixels; every
    derivative row shares the ground truth's display scale, so a ReLU network's
    zero Laplacian shows as flat gray rather than as amplified noise.
    """
    _, height, width = image.shape
    columns = [(image, sobel_gradient(image)[0].norm(dim=0, keepdim=True), discrete_laplacian(image))]
    for net in nets.values():
        columns.append((render_image(net, height, width), *derivative_images(net, height, width)))
    gradient_scale, laplacian_scale = display_scale(columns[0][1]), display_scale(columns[0][2])
    tiles = []
    for rendered, gradient_norm, laplacian in columns:
        tiles += [
            to_unit_range(rendered),
            magnitude_for_display(gradient_norm, gradient_scale),
            signed_for_display(laplacian, laplacian_scale),
        ]
    # Tiles were collected per network (column); the grid is filled row by row.
    grid = torch.stack(tiles).unflatten(0, (len(columns), 3)).transpose(0, 1).flatten(0, 1)
    labels = ["ground truth"] + [LABELS[activation] for activation in nets]
    save_labeled_grid(grid, path, column_labels=labels, row_labels=["image", "|gradient|", "Laplacian"])


@torch.no_grad()
def beyond_the_grid(net: torch.nn.Module, image: torch.Tensor, args: argparse.Namespace) -> dict[str, float]:
    """Zoom and extrapolation renders, derivative images, and 2x super-resolution against the real 2x photo.

    Full-size renders go to their own PNGs; ``beyond_grid.png`` shows all four at twice the fitted size.
    """
    out = Path(args.out)
    for extent, name in [(0.5, "zoom"), (2.0, "extrapolate")]:
        render = render_image(net, args.render_size, args.render_size, extent=extent)
        save_png(to_unit_range(render), out / f"siren_{name}_{args.render_size}.png")
    double = 2 * args.size
    gradient_norm, laplacian = derivative_images(net, double, double)
    overview = [
        to_unit_range(render_image(net, double, double, extent=0.5)),
        to_unit_range(render_image(net, double, double, extent=2.0)),
        magnitude_for_display(gradient_norm),
        signed_for_display(laplacian),
    ]
    labels = ["zoom: [-0.5, 0.5]", "extrapolation: [-2, 2]", "|gradient| on [-1, 1]", "Laplacian on [-1, 1]"]
    save_labeled_grid(torch.stack(overview), out / "beyond_grid.png", column_labels=labels)
    # The photo exists at higher resolution: rendering the 2x grid is scored against it, next to bicubic upsampling.
    truth = to_model_space(load_photo(args.photo, double)).to(image.device)
    upsampled = F.interpolate(image.unsqueeze(0), scale_factor=2, mode="bicubic", align_corners=False)[0]
    return {
        "superres_2x_psnr_db": signal_psnr(render_image(net, double, double), truth),
        "bicubic_2x_psnr_db": signal_psnr(upsampled, truth),
    }


if __name__ == "__main__":
    main()

"""Fit a SIREN to a photo through its derivatives only (Sitzmann et al. 2020, Sec. 4.1):
by its gradient, by its Laplacian, and Poisson blending, i.e. by a weighted sum of the
gradients of two photos.

    python train/fit_derivatives.py --out runs/fit_derivatives                      # paper scale, GPU
    python train/fit_derivatives.py --out runs/fit_derivatives_cpu --size 64 --hidden 128 --steps 300

Targets are the Sobel gradient and 5-point Laplacian of the pixels (``finite_differences``).
A reconstruction can only be right up to what its supervision loses, so PSNR is reported
after the best constant offset; for the Laplacian fit also after the best harmonic
polynomial of degree ≤ 2 (constants, ramps, x² − y², xy: functions its Laplacian ignores).
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
    float_in,
    int_in,
    parse_before_imports,
    program,
)


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_fit_options(parser, steps=1000)
    parser.add_argument("--photo", default="camera", choices=PHOTOS, help="skimage.data photo to reconstruct")
    parser.add_argument("--second-photo", default="astronaut", choices=PHOTOS, help="the photo blended in")
    parser.add_argument(
        "--blend-weight", type=float_in(0, 1), default=0.5, help="weight of --photo's gradient in the blend"
    )
    parser.add_argument(
        "--size",
        type=int_in(MIN_FIT_SIZE, MAX_FIT_SIZE),
        default=256,
        help="fit the photos resized to size x size (grayscale)",
    )
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

from pathlib import Path

import torch

from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.core.siren import Siren
from hypersiren.figures import display_scale, magnitude_for_display, plot_curves, save_labeled_grid, signed_for_display
from hypersiren.fit_runs import require_fit_memory, seeded_siren, start_run
from hypersiren.results import write_curves_csv, write_json, write_table
from hypersiren.single.field_images import derivative_images, render_image
from hypersiren.single.finite_differences import discrete_laplacian, sobel_gradient
from hypersiren.single.fitting import (
    FitConfig,
    fit_bytes,
    fit_gradient,
    fit_laplacian,
    match_harmonic,
    signal_psnr,
)
from hypersiren.single.photos import load_photo

HARMONIC_DEGREE = 2


@exits_cleanly()
def main() -> None:
    args = parse_args()
    require_fit_memory(  # the Laplacian fit's step, the largest
        fit_bytes(points=args.size**2, hidden=args.hidden, layers=args.layers, derivative_order=2),
        device=args.device,
        what=f"a Laplacian fit of {args.size}x{args.size} pixels by a {args.layers}x{args.hidden} SIREN",
    )
    out = start_run(args, program="fit_derivatives")
    config = FitConfig(steps=args.steps, lr=args.lr)
    image = to_model_space(load_photo(args.photo, args.size)).to(args.device)  # (1, S, S) in [-1, 1]
    second = to_model_space(load_photo(args.second_photo, args.size)).to(args.device)

    gradient_net = seeded_siren(args, in_features=2)
    gradient_fit = fit_gradient(gradient_net, sobel_gradient(image)[0], image, config, progress="gradient")
    laplacian_net = seeded_siren(args, in_features=2)
    laplacian_fit = fit_laplacian(laplacian_net, discrete_laplacian(image), image, config, progress="Laplacian")
    # Gradients are linear, so the blended field is the gradient of the pixel blend: that blend is the reference.
    weight = args.blend_weight
    blend_gradient = weight * sobel_gradient(image)[0] + (1 - weight) * sobel_gradient(second)[0]
    blend_reference = weight * image + (1 - weight) * second
    blend_net = seeded_siren(args, in_features=2)
    blend_fit = fit_gradient(blend_net, blend_gradient, blend_reference, config, progress="Poisson blend")

    size = args.size
    rows = []
    blend_supervision = f"{weight:g}·∇{args.photo} + {1 - weight:g}·∇{args.second_photo}"
    for name, supervision, net, result, reference in [
        ("gradient only", "Sobel ∇", gradient_net, gradient_fit, image),
        ("Laplacian only", "5-point Δ", laplacian_net, laplacian_fit, image),
        ("Poisson blend", blend_supervision, blend_net, blend_fit, blend_reference),
    ]:
        # Only the Laplacian loses more than a constant; for gradient fits the offset is the whole null space.
        harmonic = None
        if net is laplacian_net:
            harmonic = signal_psnr(render_image(net, size, size), reference, HARMONIC_DEGREE)
        rows.append(
            {
                "fit": name,
                "supervision": supervision,
                "psnr_offset_db": result.final_psnr,
                f"psnr_harmonic{HARMONIC_DEGREE}_db": harmonic,
                "seconds": result.seconds,
            }
        )
        print(f"{name:>15}: {result.final_psnr:6.2f} dB up to an offset ({result.seconds:.1f} s)")
    title = f"{args.photo} {size}x{size}, {args.steps} steps, {args.layers}x{args.hidden} SIREN ω₀={args.omega:g}"
    write_table(rows, out, "derivative_fits", title)
    write_json(rows, out / "results.json")
    curves = {"gradient only": gradient_fit.psnr, "Laplacian only": laplacian_fit.psnr, "Poisson blend": blend_fit.psnr}
    write_curves_csv(curves, out / "psnr_curves.csv")
    plot_curves(curves, out / "psnr_curves.png", y_label="PSNR up to an offset (dB)")
    save_derivative_figure(image, gradient_net, laplacian_net, out / "derivative_fits.png")
    save_blend_figure(image, second, blend_gradient, blend_reference, blend_net, out / "poisson_blend.png")


def save_derivative_figure(image: torch.Tensor, gradient_net: Siren, laplacian_net: Siren, path: Path) -> None:
    """Rows: gradient fit, Laplacian fit.

    Columns: ground truth, target derivative, the SIREN's derivative, reconstruction (offset-matched).
    """
    _, height, width = image.shape
    target_gradient_norm = sobel_gradient(image)[0].norm(dim=0, keepdim=True)
    target_laplacian = discrete_laplacian(image)
    fitted_gradient_norm, _ = derivative_images(gradient_net, height, width)
    _, fitted_laplacian = derivative_images(laplacian_net, height, width)
    gradient_scale, laplacian_scale = display_scale(target_gradient_norm), display_scale(target_laplacian)
    tiles = [
        to_unit_range(image),
        magnitude_for_display(target_gradient_norm, gradient_scale),
        magnitude_for_display(fitted_gradient_norm, gradient_scale),
        to_unit_range(match_harmonic(render_image(gradient_net, height, width), image)),
        to_unit_range(image),
        signed_for_display(target_laplacian, laplacian_scale),
        signed_for_display(fitted_laplacian, laplacian_scale),
        to_unit_range(match_harmonic(render_image(laplacian_net, height, width), image)),
    ]
    columns = ["ground truth", "target derivative", "SIREN derivative", "reconstruction"]
    save_labeled_grid(torch.stack(tiles), path, column_labels=columns, row_labels=["gradient fit", "Laplacian fit"])


def save_blend_figure(
    image: torch.Tensor,
    second: torch.Tensor,
    blend_gradient: torch.Tensor,
    reference: torch.Tensor,
    net: Siren,
    path: Path,
) -> None:
    """The two photos, the blended gradient's magnitude, the SIREN fitted to it, and the pixel blend for reference."""
    _, height, width = image.shape
    tiles = [
        to_unit_range(image),
        to_unit_range(second),
        magnitude_for_display(blend_gradient.norm(dim=0, keepdim=True)),
        to_unit_range(match_harmonic(render_image(net, height, width), reference)),
        to_unit_range(reference),
    ]
    columns = ["photo 1", "photo 2", "|blended gradient|", "SIREN from gradient", "pixel blend"]
    save_labeled_grid(torch.stack(tiles), path, column_labels=columns)


if __name__ == "__main__":
    main()

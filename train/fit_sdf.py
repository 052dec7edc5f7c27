"""Fit a SIREN signed distance function to an oriented point cloud of an analytic shape
(Sitzmann et al. 2020, Sec. 4.2), extract its zero level set with marching cubes, and
measure it against the true surface.

    python train/fit_sdf.py --out runs/fit_sdf                                    # paper-sized net, GPU
    python train/fit_sdf.py --out runs/fit_sdf_cpu --hidden 64 --layers 2 --steps 2000 --lr 1e-3 --batch-size 512

Reports the Chamfer distance of the extracted mesh to the true surface (with the floor that
sampling alone gives), the exact distance of mesh points to the true surface, and |∇Φ|
(1 for a true distance function) on the surface, near it and in the whole cube.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.cli import add_fit_options, exits_cleanly, int_in, parse_before_imports, program

MAX_POINTS = 10_000_000  # per point cloud or batch: 3 coordinates and 3 normals each, and a gradient per step
MAX_RESOLUTION = 512  # marching cubes over 512³ = 134 M evaluations of Φ
SHAPE_NAMES = ("torus", "sphere")  # --shape's choices, named before torch loads: SHAPES (below) holds each surface


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_fit_options(parser, steps=5000)  # the paper's lr 1e-4; 1e-3 converges in fewer steps
    parser.add_argument(
        "--shape", choices=SHAPE_NAMES, default="torus", help="the analytic surface whose point cloud is fitted"
    )
    points = int_in(1, MAX_POINTS)
    parser.add_argument("--cloud-size", type=points, default=100_000, help="points in the oriented point cloud")
    parser.add_argument("--batch-size", type=points, default=4096, help="surface points per step (as many off-surface)")
    parser.add_argument(
        "--resolution", type=int_in(2, MAX_RESOLUTION), default=128, help="marching-cubes grid per axis"
    )
    parser.add_argument("--eval-points", type=points, default=30_000, help="points per surface for Chamfer distance")
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

import math

import torch

from hypersiren.core.siren import Siren
from hypersiren.errors import ConfigError
from hypersiren.figures import plot_curves, save_labeled_grid, signed_distance_for_display
from hypersiren.fit_runs import require_fit_memory, seeded_siren, start_run
from hypersiren.results import write_curves_csv, write_json, write_table
from hypersiren.single.sdf import (
    SDFFitConfig,
    Shape,
    Sphere,
    Torus,
    chamfer_distance,
    extract_mesh,
    field_and_gradient,
    fit_sdf,
    sample_mesh,
    sdf_bytes,
    sdf_slice,
    sphere_trace,
    write_obj,
)

SHAPES = {"torus": Torus(major_radius=0.5, minor_radius=0.2), "sphere": Sphere(radius=0.5)}  # one per SHAPE_NAMES


@exits_cleanly()
def main() -> None:
    args = parse_args()
    config = SDFFitConfig(steps=args.steps, lr=args.lr, cloud_size=args.cloud_size, batch_size=args.batch_size)
    require_fit_memory(
        sdf_bytes(
            config, hidden=args.hidden, layers=args.layers, resolution=args.resolution, eval_points=args.eval_points
        ),
        device=args.device,
        what=f"an SDF fit of {args.batch_size} x 2 points per step, a {args.resolution}³ mesh and {args.eval_points} "
        "points per surface scored",
    )
    out = start_run(args, program="fit_sdf")
    shape = SHAPES[args.shape]

    net = seeded_siren(args, in_features=3)
    losses, seconds = fit_sdf(net, shape, config, seed=args.seed, progress=f"SDF {args.shape}")

    try:
        vertices, faces = extract_mesh(net, args.resolution)
    except ValueError as error:  # Φ never crosses zero: the fit has not found the surface yet
        raise ConfigError(f"{error} after {args.steps} steps: fit longer (--steps) or at a higher --lr") from None
    write_obj(vertices, faces, out / "mesh.obj")
    results = {"shape": repr(shape), "steps": args.steps, "seconds": seconds, "final_loss": losses[-1]}
    results |= evaluate(net, shape, vertices, faces, args)
    rows = [{"metric": name, "value": value} for name, value in results.items()]
    title = f"SIREN SDF of a {args.shape}, {args.layers}x{args.hidden}, ω₀={args.omega:g}"
    write_table(rows, out, "sdf_metrics", title)
    write_json(results, out / "results.json")
    for name, value in results.items():
        print(f"{name:>32}: {value:.4g}" if isinstance(value, float) else f"{name:>32}: {value}")

    curves = {"log10 loss": [math.log10(loss) for loss in losses]}
    write_curves_csv(curves, out / "loss_curve.csv")
    plot_curves(curves, out / "loss_curve.png", y_label="log10 SDF loss")
    slices = [signed_distance_for_display(sdf_slice(net, 256, axis=axis)).cpu() for axis in (2, 1)]
    render = sphere_trace(net, 256).expand(3, -1, -1).cpu()
    labels = ["SDF on z = 0", "SDF on y = 0", "zero level set (traced)"]
    save_labeled_grid(torch.stack([*slices, render]), out / "sdf.png", column_labels=labels)


@torch.no_grad()
def evaluate(
    net: Siren, shape: Shape, vertices: torch.Tensor, faces: torch.Tensor, args: argparse.Namespace
) -> dict[str, float]:
    """Mesh-vs-surface distances and eikonal statistics, on points independent of the training cloud."""
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(args.seed + 1)
    mesh_points = sample_mesh(vertices, faces, args.eval_points, generator).to(device)
    surface_points, surface_normals = (t.to(device) for t in shape.sample_surface(args.eval_points, generator))
    chamfer, accuracy, completeness = chamfer_distance(mesh_points, surface_points)
    # Two independent samplings of the exact surface are not at distance 0: this is the metric's floor.
    floor, _, _ = chamfer_distance(shape.sample_surface(args.eval_points, generator)[0].to(device), surface_points)
    exact_distance = shape.sdf(mesh_points).abs().squeeze(1)

    # Points displaced along the normal by t ∈ [-0.1, 0.1] have true signed distance t (for these shapes).
    offsets = 0.2 * torch.rand(args.eval_points, 1, generator=generator).to(device) - 0.1
    near_values, near_gradients = field_and_gradient(net, surface_points + offsets * surface_normals)
    surface_values, surface_gradients = field_and_gradient(net, surface_points)
    cube_points = (2 * torch.rand(args.eval_points, 3, generator=generator) - 1).to(device)
    _, cube_gradients = field_and_gradient(net, cube_points)
    return {
        "chamfer": chamfer,
        "chamfer_mesh_to_surface": accuracy,
        "chamfer_surface_to_mesh": completeness,
        "chamfer_sampling_floor": floor,
        "mesh_true_distance_mean": float(exact_distance.mean()),
        "mesh_true_distance_p99": float(torch.quantile(exact_distance, 0.99)),
        "surface_abs_phi_mean": float(surface_values.abs().mean()),
        "near_surface_phi_error_mean": float((near_values - offsets).abs().mean()),
        "grad_norm_surface_mean": float(surface_gradients.norm(dim=-1).mean()),
        "grad_norm_near_surface_mean": float(near_gradients.norm(dim=-1).mean()),
        "grad_norm_cube_mean": float(cube_gradients.norm(dim=-1).mean()),
        "grad_norm_cube_abs_dev_from_1": float((cube_gradients.norm(dim=-1) - 1).abs().mean()),
    }


if __name__ == "__main__":
    main()

"""Signed distance functions from oriented point clouds (Sitzmann et al. 2020, Sec. 4.2).

A SIREN Φ: R³ -> R is fitted to points on a surface and their normals. The
loss (the paper's, with its weights) asks for Φ = 0 and ∇Φ = n on the surface,
|∇Φ| = 1 everywhere (the eikonal equation, which makes Φ a distance), and
penalizes exp(−α|Φ|) at random points off the surface, so no spurious zero
level set appears away from the data. The zero level set is then extracted with
marching cubes and compared with the true surface by Chamfer distance.

Shapes are analytic (``Sphere``, ``Torus``) so the point cloud and the true
surface come with no download, and the true SDF is known exactly. All points
live in the cube [-1, 1]³.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from skimage.measure import marching_cubes
from torch import Tensor, nn

from hypersiren.core.checks import require_count
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.diffops import gradient
from hypersiren.files import write_text
from hypersiren.single.field_images import window_grid
from hypersiren.single.fitting import FitConfig, fit_bytes, minimize

CHAMFER_CHUNK = 2048  # points whose distances to a whole point set are computed at once


class Sphere(NamedTuple):
    radius: float = 0.5

    def sdf(self, points: Tensor) -> Tensor:
        """True signed distance ``(N, 3) -> (N, 1)``, negative inside."""
        return points.norm(dim=-1, keepdim=True) - self.radius

    def sample_surface(self, count: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``count`` area-uniform surface points and their outward unit normals, each ``(count, 3)``."""
        normals = F.normalize(torch.randn(count, 3, generator=generator), dim=-1)
        return self.radius * normals, normals


class Torus(NamedTuple):
    """A ring around the z axis: tube of radius ``minor_radius`` at ``major_radius`` from the axis."""

    major_radius: float = 0.5
    minor_radius: float = 0.2

    def sdf(self, points: Tensor) -> Tensor:
        """True signed distance ``(N, 3) -> (N, 1)``, negative inside."""
        ring = torch.stack([points[:, :2].norm(dim=-1) - self.major_radius, points[:, 2]], dim=-1)
        return ring.norm(dim=-1, keepdim=True) - self.minor_radius

    def sample_surface(self, count: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``count`` area-uniform surface points and their outward unit normals, each ``(count, 3)``.

        With tube angle θ and ring angle φ the area element is ∝ R + r·cos θ, so
        θ is drawn uniformly and accepted with probability (R + r·cos θ) / (R + r).
        """
        major, minor = self.major_radius, self.minor_radius
        accepted: list[Tensor] = []
        while sum(len(part) for part in accepted) < count:
            theta = 2 * math.pi * torch.rand(2 * count, generator=generator)
            keep = torch.rand(2 * count, generator=generator) * (major + minor) < major + minor * torch.cos(theta)
            accepted.append(theta[keep])
        theta = torch.cat(accepted)[:count]
        phi = 2 * math.pi * torch.rand(count, generator=generator)
        cos_theta = torch.cos(theta)
        normals = torch.stack([cos_theta * torch.cos(phi), cos_theta * torch.sin(phi), torch.sin(theta)], dim=-1)
        ring = torch.stack([major * torch.cos(phi), major * torch.sin(phi), torch.zeros_like(phi)], dim=-1)
        return ring + minor * normals, normals


Shape = Sphere | Torus


@dataclass(frozen=True)
class SDFLossWeights:
    """The paper's weights (``loss_functions.sdf`` in its code) and its α = 100."""

    surface: float = 3e3
    normal: float = 1e2
    eikonal: float = 5e1
    off_surface: float = 1e2
    alpha: float = 100.0


def sdf_loss(
    net: nn.Module,
    surface_points: Tensor,
    surface_normals: Tensor,
    off_surface_points: Tensor,
    weights: SDFLossWeights = SDFLossWeights(),
) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's SDF loss for one batch; returns the total and its detached weighted terms.

    ``surface_points``, ``surface_normals (S, 3)``; ``off_surface_points (M, 3)``.
    As in the paper's code every term is averaged over the whole batch (S + M
    points), so the weights mean what they mean there.
    """
    num_surface = surface_points.shape[0]
    coords = torch.cat([surface_points, off_surface_points]).requires_grad_(True)
    values = net(coords)
    field_gradient = gradient(values, coords)
    total_points = coords.shape[0]
    on_values, off_values = values[:num_surface], values[num_surface:]
    cosine = F.cosine_similarity(field_gradient[:num_surface], surface_normals, dim=-1)
    terms = {
        "surface": weights.surface * on_values.abs().sum() / total_points,
        "normal": weights.normal * (1.0 - cosine).sum() / total_points,
        "eikonal": weights.eikonal * (field_gradient.norm(dim=-1) - 1.0).abs().mean(),
        "off_surface": weights.off_surface * torch.exp(-weights.alpha * off_values.abs()).sum() / total_points,
    }
    return sum(terms.values()), {name: term.detach() for name, term in terms.items()}


@dataclass
class SDFFitConfig(FitConfig):
    """``FitConfig``'s steps and rate (the paper's 1e-4), and the point cloud an SDF is fitted to."""

    steps: int = 2000
    cloud_size: int = 100_000  # points in the oriented point cloud sampled once from the shape
    batch_size: int = 4096  # surface points per step; as many off-surface points again, as in the paper

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("cloud_size", "batch_size"):
            require_count(getattr(self, name), name, low=1)


def fit_sdf(
    net: nn.Module, shape: Shape, config: SDFFitConfig, seed: int = 0, progress: str | None = None
) -> tuple[list[float], float]:
    """Fit ``net`` (R³ -> R) to an oriented point cloud of ``shape``; returns per-step losses and seconds.

    The cloud is fixed (a scan's worth of points); each step draws a batch from it
    and as many uniformly random points in [-1, 1]³ for the off-surface term.
    """
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    cloud_points, cloud_normals = (tensor.to(device) for tensor in shape.sample_surface(config.cloud_size, generator))

    def step_loss() -> tuple[Tensor, float]:
        # Drawn by the CPU generator, then moved: a seed gives the same batches on every device.
        batch = torch.randint(config.cloud_size, (config.batch_size,), generator=generator).to(device)
        off_surface = (2 * torch.rand(config.batch_size, 3, generator=generator) - 1).to(device)
        loss, _ = sdf_loss(net, cloud_points[batch], cloud_normals[batch], off_surface)
        return loss, float(loss.detach())

    return minimize(net, step_loss, steps=config.steps, lr=config.lr, progress=progress)


def sdf_bytes(config: SDFFitConfig, hidden: int, layers: int, resolution: int, eval_points: int) -> float:
    """Estimated bytes of fitting, meshing and scoring an SDF: a fit step on ``2 * batch_size`` points supervised by
    the gradient (``fit_bytes``), then, doubled as it errs high, the point cloud, the ``resolution``³ volume with
    its coordinates, and the Chamfer distance's block of ``CHAMFER_CHUNK x eval_points`` distances."""
    step = fit_bytes(2 * config.batch_size, hidden, layers, derivative_order=1, in_features=3)
    return step + 2 * 4 * (6 * config.cloud_size + 4 * resolution**3 + 2 * CHAMFER_CHUNK * eval_points)


@torch.no_grad()
def sdf_volume(net: nn.Module, resolution: int, extent: float = 1.0, chunk: int = 65_536) -> Tensor:
    """Φ at the centres of the ``resolution``³ cells of [-extent, extent]³: ``(R, R, R)``, indexed [x, y, z]."""
    points = extent * cell_centres((resolution,) * 3, device=next(net.parameters()).device)
    values = torch.cat([net(part) for part in points.split(chunk)])
    return values.view(resolution, resolution, resolution)


def extract_mesh(net: nn.Module, resolution: int = 64, extent: float = 1.0) -> tuple[Tensor, Tensor]:
    """Zero level set of ``net`` by marching cubes: vertices ``(V, 3)`` in world units, faces ``(F, 3)`` int64.

    The volume is sampled at cell centres (``sdf_volume``), so the mesh spans the centres' cube, half a cell
    inside [-extent, extent]³: sample index i lies at (i + 1/2)·2·extent/R − extent.
    """
    volume = sdf_volume(net, require_count(resolution, "resolution", low=2), extent).cpu()
    if not volume.min() < 0 < volume.max():
        raise ValueError(
            f"Φ does not change sign on the grid (range {volume.min():.3g} … {volume.max():.3g}): no surface to extract"
        )
    spacing = 2 * extent / resolution
    vertices, faces, _, _ = marching_cubes(volume.numpy(), level=0.0, spacing=(spacing,) * 3)
    first_centre = spacing / 2 - extent
    return torch.from_numpy(vertices.copy()).float() + first_centre, torch.from_numpy(faces.copy()).long()


def sample_mesh(vertices: Tensor, faces: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` area-uniform points on a triangle mesh, ``(count, 3)``."""
    corners = vertices[faces]  # (F, 3 corners, 3)
    areas = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).norm(dim=-1)
    chosen = torch.multinomial(areas, count, replacement=True, generator=generator)
    # Uniform barycentric coordinates: reflect (u, v) back into the triangle when u + v > 1.
    u, v = torch.rand(2, count, 1, generator=generator)
    outside = (u + v) > 1
    u, v = torch.where(outside, 1 - u, u), torch.where(outside, 1 - v, v)
    triangle = corners[chosen]
    return triangle[:, 0] + u * (triangle[:, 1] - triangle[:, 0]) + v * (triangle[:, 2] - triangle[:, 0])


def chamfer_distance(points_a: Tensor, points_b: Tensor, chunk: int = CHAMFER_CHUNK) -> tuple[float, float, float]:
    """Symmetric Chamfer distance of ``(N, 3)`` and ``(M, 3)``: (mean of both sides, a->b, b->a).

    a->b is the mean Euclidean distance from each point of a to its nearest point
    of b (accuracy when a is the reconstruction), b->a the converse (completeness).
    """

    def one_sided(source: Tensor, target: Tensor) -> float:
        nearest = torch.cat([torch.cdist(part, target).min(dim=1).values for part in source.split(chunk)])
        return float(nearest.mean())

    a_to_b, b_to_a = one_sided(points_a, points_b), one_sided(points_b, points_a)
    return 0.5 * (a_to_b + b_to_a), a_to_b, b_to_a


def field_and_gradient(net: nn.Module, points: Tensor, chunk: int = 16_384) -> tuple[Tensor, Tensor]:
    """Φ ``(N, 1)`` and ∇Φ ``(N, 3)`` at ``points (N, 3)``, detached (for evaluation, not training)."""
    values, gradients = [], []
    for part in points.split(chunk):
        part = part.detach().requires_grad_(True)
        with torch.enable_grad():  # ∇Φ needs autograd even when the caller evaluates under no_grad
            part_values = net(part)
            gradients.append(gradient(part_values, part).detach())
        values.append(part_values.detach())
    return torch.cat(values), torch.cat(gradients)


def sdf_slice(net: nn.Module, resolution: int = 256, extent: float = 1.0, axis: int = 2, offset: float = 0.0) -> Tensor:
    """Φ at the pixel centres of the plane {x_axis = offset} over [-extent, extent]², ``(R, R)``: columns along
    the first remaining axis, rows along the second (top = +extent), e.g. axis=2 gives the z = offset plane with
    x to the right and y up."""
    row, col = window_grid(resolution, resolution, extent, device=next(net.parameters()).device).unbind(dim=-1)
    in_plane = [col, -row]  # rows grow downwards, the second axis upwards
    in_plane.insert(axis, torch.full_like(col, offset))
    with torch.no_grad():
        return net(torch.stack(in_plane, dim=-1)).view(resolution, resolution)


def sphere_trace(
    net: nn.Module, resolution: int = 256, extent: float = 1.0, iterations: int = 64, tolerance: float = 1e-3
) -> Tensor:
    """Lambert-shaded render of the zero level set, seen orthographically along the view below, ``(1, R, R)``.

    Each ray starts outside the [-extent, extent]³ cube and steps forward by Φ
    (safe when Φ is a distance: a step cannot cross the surface); where it ends
    with |Φ| < ``tolerance`` inside the cube it is shaded by the normal ∇Φ/|∇Φ|.
    Misses are white.
    """
    device = next(net.parameters()).device
    view = F.normalize(torch.tensor([-1.0, -1.0, -1.5], device=device), dim=0)
    light = F.normalize(torch.tensor([-0.5, 1.0, 1.0], device=device), dim=0)
    # An orthonormal image plane (right, up) perpendicular to the view direction.
    right = F.normalize(torch.linalg.cross(view, torch.tensor([0.0, 0.0, 1.0], device=device)), dim=0)
    up = torch.linalg.cross(right, view)
    row, col = window_grid(resolution, resolution, extent, device=device).unbind(dim=-1)
    origins = (col.unsqueeze(1) * right - row.unsqueeze(1) * up) - 2 * extent * view  # one ray per pixel centre
    travelled = torch.zeros(origins.shape[0], 1, device=device)
    with torch.no_grad():
        for _ in range(iterations):
            # Small negative steps let a ray that overshot (Φ is only approximately a distance) back up.
            travelled += net(origins + travelled * view).clamp_min(-0.05)
    ends = origins + travelled * view
    values, gradients = field_and_gradient(net, ends)
    # Φ was only fitted inside the cube: zeros outside it are extrapolation, never a hit.
    hit = (values.squeeze(1).abs() < tolerance) & (ends.abs().amax(dim=-1) <= extent)
    lambert = (F.normalize(gradients, dim=-1) @ light).clamp_min(0.0)
    return torch.where(hit, 0.15 + 0.85 * lambert, torch.ones_like(lambert)).view(1, resolution, resolution)


def write_obj(vertices: Tensor, faces: Tensor, path: str | Path) -> None:
    """A triangle mesh as Wavefront OBJ text (1-based face indices), readable by any mesh viewer."""
    lines = [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    write_text("\n".join(lines) + "\n", path)

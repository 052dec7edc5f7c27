import math

import pytest
import torch
from torch import nn

from hypersiren.core.siren import Siren
from hypersiren.single.sdf import (
    SDFFitConfig,
    Sphere,
    Torus,
    chamfer_distance,
    extract_mesh,
    field_and_gradient,
    fit_sdf,
    sample_mesh,
    sdf_loss,
    sdf_slice,
    sphere_trace,
)


class ExactSDF(nn.Module):
    """A shape's true SDF as a network (with one unused parameter so device lookups work)."""

    def __init__(self, shape, scale: float = 1.0):
        super().__init__()
        self.shape, self.scale = shape, scale
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, points):
        return self.scale * self.shape.sdf(points)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [Sphere(0.5), Torus(0.5, 0.2)])
def test_surface_samples_lie_on_the_surface_with_true_normals(shape):
    points, normals = shape.sample_surface(2000, generator())
    assert points.shape == normals.shape == (2000, 3)
    assert shape.sdf(points).abs().max() < 1e-5
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(2000))
    _, true_gradient = field_and_gradient(ExactSDF(shape), points)
    torch.testing.assert_close(normals, true_gradient, rtol=1e-4, atol=1e-4)


def test_torus_samples_are_uniform_in_area():
    # Area of the outer half (cos θ > 0) is πR + 2r out of 2πR: uniform angles would give one half.
    major, minor = 0.5, 0.2
    points, _ = Torus(major, minor).sample_surface(40_000, generator())
    outer = (points[:, :2].norm(dim=-1) > major).float().mean()
    assert float(outer) == pytest.approx((math.pi * major + 2 * minor) / (2 * math.pi * major), abs=0.01)


def test_sdf_loss_vanishes_for_the_true_sdf_except_the_off_surface_term():
    sphere = Sphere(0.5)
    surface, normals = sphere.sample_surface(1000, generator())
    off_surface = 2 * torch.rand(1000, 3, generator=generator(1)) - 1
    _, terms = sdf_loss(ExactSDF(sphere), surface, normals, off_surface)
    assert terms["surface"] < 1e-3 and terms["normal"] < 1e-3 and terms["eikonal"] < 1e-3
    # exp(-100 |Φ|) is tiny except for the few random points within ~0.01 of the surface.
    assert 0 < terms["off_surface"] < 5.0


def test_sdf_loss_penalizes_a_field_that_is_not_a_distance():
    sphere = Sphere(0.5)
    surface, normals = sphere.sample_surface(1000, generator())
    off_surface = 2 * torch.rand(1000, 3, generator=generator(1)) - 1
    _, doubled = sdf_loss(ExactSDF(sphere, scale=2.0), surface, normals, off_surface)
    _, flipped = sdf_loss(ExactSDF(sphere, scale=-1.0), surface, normals, off_surface)
    assert doubled["eikonal"] == pytest.approx(50.0, rel=1e-3)  # weight 50 · | |∇Φ| - 1 | = 50 · 1
    assert flipped["normal"] == pytest.approx(100.0 * 2 * 1000 / 2000, rel=1e-3)  # 1 - cos = 2, averaged over 2000


def test_chamfer_distance():
    points = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert chamfer_distance(points, points) == (0.0, 0.0, 0.0)
    shifted = points + torch.tensor([0.0, 0.0, 0.3])
    assert chamfer_distance(points, shifted)[0] == pytest.approx(0.3)
    # One-sided: an extra far point in b only counts from b's side.
    extra = torch.cat([points, torch.tensor([[10.0, 0.0, 0.0]])])
    both, a_to_b, b_to_a = chamfer_distance(points, extra)
    assert a_to_b == 0.0 and b_to_a == pytest.approx(8.0 / 4) and both == pytest.approx(1.0)


def test_mesh_samples_are_uniform_on_the_mesh():
    # Two triangles of area 1 and 3: three quarters of the points must land on the larger one.
    vertices = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [10, 0, 0], [13, 0, 0], [10, 2, 0]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    points = sample_mesh(vertices, faces, 8000, generator())
    assert points[:, 2].abs().max() == 0
    assert float((points[:, 0] >= 10).float().mean()) == pytest.approx(0.75, abs=0.02)
    small = points[points[:, 0] < 10]
    assert (small[:, 0] / 1 + small[:, 1] / 2 <= 1 + 1e-6).all()  # inside the triangle, not its parallelogram


def test_marching_cubes_of_the_true_sphere_recovers_its_radius():
    vertices, faces = extract_mesh(ExactSDF(Sphere(0.5)), resolution=32)
    # Vertices mapped with the corners' spacing 2/31 would give radius 0.516, off by half a cell: shifted 0.03.
    assert (vertices.norm(dim=-1) - 0.5).abs().max() < 0.01
    assert faces.dtype == torch.int64 and faces.max() < len(vertices)


def test_extract_mesh_refuses_a_field_without_a_zero_level():
    with pytest.raises(ValueError, match="does not change sign"):
        extract_mesh(ExactSDF(Sphere(5.0)), resolution=8)


def test_slice_and_sphere_trace_of_the_true_sphere():
    sphere = ExactSDF(Sphere(0.5))
    plane = sdf_slice(sphere, 65, axis=2)
    assert plane[32, 32] == pytest.approx(-0.5)  # centre of the z = 0 plane
    assert plane[32, 64] == pytest.approx(0.5 - 1 / 65)  # the last pixel's centre, half a pixel inside x = 1
    render = sphere_trace(sphere, 64)
    hit = render < 1
    assert render.shape == (1, 64, 64)
    # Orthographic view of a sphere of radius 0.5 in a 2x2 window: the disc covers π·0.25 / 4 of it.
    assert float(hit.float().mean()) == pytest.approx(math.pi * 0.25 / 4, abs=0.02)


class Coordinate(ExactSDF):
    """Φ(p) = p[index]: shows where each pixel of a slice lies."""

    def __init__(self, index):
        super().__init__(Sphere())
        self.index = index

    def forward(self, points):
        return points[:, self.index : self.index + 1]


def test_slices_sample_pixel_centres_with_the_second_axis_up():
    centres = torch.tensor([-0.75, -0.25, 0.25, 0.75])
    for axis, (right, up) in [(2, (0, 1)), (1, (0, 2)), (0, (1, 2))]:
        torch.testing.assert_close(sdf_slice(Coordinate(right), 4, axis=axis), centres.expand(4, 4))
        torch.testing.assert_close(sdf_slice(Coordinate(up), 4, axis=axis), centres.flip(0).view(4, 1).expand(4, 4))
        torch.testing.assert_close(sdf_slice(Coordinate(axis), 4, axis=axis, offset=0.3), torch.full((4, 4), 0.3))
    torch.testing.assert_close(sdf_slice(Coordinate(0), 4, extent=2.0), 2 * centres.expand(4, 4))


def test_sphere_trace_ignores_surfaces_outside_the_fitted_cube():
    class OutsideBall(ExactSDF):
        def forward(self, points):  # a small ball above the cube (z > 1), between the camera and the cube
            return (points - torch.tensor([0.9, 0.9, 1.35])).norm(dim=-1, keepdim=True) - 0.1

    assert (sphere_trace(OutsideBall(Sphere()), 64) == 1).all()


@pytest.fixture(scope="module")
def fitted_sphere():
    torch.manual_seed(0)
    net = Siren(3, 64, 2, 1, first_omega=15.0, hidden_omega=15.0)
    losses, _ = fit_sdf(net, Sphere(0.5), SDFFitConfig(steps=500, lr=1e-3, cloud_size=10_000, batch_size=512))
    return net, losses


def test_sdf_training_lowers_the_loss(fitted_sphere):
    _, losses = fitted_sphere
    assert sum(losses[-50:]) / 50 < 0.2 * sum(losses[:10]) / 10


def test_fitted_sphere_is_a_distance_function_near_its_surface(fitted_sphere):
    net, _ = fitted_sphere
    points, normals = Sphere(0.5).sample_surface(2000, generator(7))
    values, gradients = field_and_gradient(net, points)
    assert values.abs().mean() < 0.015
    assert gradients.norm(dim=-1).mean() == pytest.approx(1.0, abs=0.05)
    assert torch.nn.functional.cosine_similarity(gradients, normals).mean() > 0.99
    for offset in (-0.05, 0.05):  # Φ(p + t n) = t: distance, not just a zero level
        values, gradients = field_and_gradient(net, points + offset * normals)
        assert (values.squeeze(1) - offset).abs().mean() < 0.02
        assert gradients.norm(dim=-1).mean() == pytest.approx(1.0, abs=0.12)


def test_fitted_sphere_zero_level_is_at_the_radius(fitted_sphere):
    net, _ = fitted_sphere
    vertices, faces = extract_mesh(net, resolution=40)
    mesh_points = sample_mesh(vertices, faces, 5000, generator(3))
    # Short training leaves small spurious pieces far from the data, so: median, and completeness.
    assert float(mesh_points.norm(dim=-1).median()) == pytest.approx(0.5, abs=0.01)
    _, _, surface_to_mesh = chamfer_distance(mesh_points, Sphere(0.5).sample_surface(5000, generator(4))[0])
    assert surface_to_mesh < 0.03

import pytest
import torch

from hypersiren.core.diffops import divergence, gradient, laplacian
from hypersiren.core.siren import Siren


def analytic_points():
    return (torch.rand(2, 40, 2, dtype=torch.float64) * 2 - 1).requires_grad_()


def wave(coords):
    """f(x, y) = sin(2x) cos(3y), ``(..., N, 2) -> (..., N, 1)``."""
    x, y = coords[..., :1], coords[..., 1:]
    return torch.sin(2 * x) * torch.cos(3 * y)


def test_gradient_of_analytic_function():
    coords = analytic_points()
    x, y = coords[..., :1].detach(), coords[..., 1:].detach()
    expected = torch.cat([2 * torch.cos(2 * x) * torch.cos(3 * y), -3 * torch.sin(2 * x) * torch.sin(3 * y)], dim=-1)
    torch.testing.assert_close(gradient(wave(coords), coords), expected)


def test_divergence_of_analytic_field():
    coords = analytic_points()
    x, y = coords[..., :1], coords[..., 1:]
    field = torch.cat([x**2 * y, y**3 + x], dim=-1)
    expected = 2 * x * y + 3 * y**2
    torch.testing.assert_close(divergence(field, coords), expected.detach())


def test_laplacian_of_analytic_function():
    coords = analytic_points()
    values = wave(coords)
    torch.testing.assert_close(laplacian(values, coords), -13 * values.detach())


def test_laplacian_keeps_the_graph_for_training():
    siren = Siren(2, 8, 1, 1)
    coords = torch.rand(1, 10, 2, requires_grad=True)
    laplacian(siren(coords), coords).square().sum().backward()
    # every parameter but the output bias, a constant the Laplacian cannot see
    assert all(w.grad.abs().sum() > 0 for w in siren.weights)
    assert all(b.grad.abs().sum() > 0 for b in siren.biases[:-1])


def test_siren_laplacian_matches_finite_differences():
    torch.manual_seed(0)
    siren = Siren(2, 32, 1, 1).double()
    coords = (torch.rand(1, 16, 2, dtype=torch.float64) * 2 - 1).requires_grad_()
    values = siren(coords)
    assert values.dtype == torch.float64
    step = 1e-3
    with torch.no_grad():
        centre = siren(coords)
        finite_difference = (
            sum(
                siren(coords + step * offset) - 2 * centre + siren(coords - step * offset)
                for offset in torch.eye(2, dtype=torch.float64)
            )
            / step**2
        )
    result = laplacian(values, coords)
    assert finite_difference.abs().max() > 10  # omega=30: a strongly curved field, not a trivial check
    torch.testing.assert_close(result, finite_difference, rtol=1e-4, atol=1e-3)


def test_gradient_rejects_vector_field():
    coords = analytic_points()
    with pytest.raises(ValueError, match=r"gradient needs a scalar field \(\.\.\., N, 1\)"):
        gradient(coords * 2, coords)


def test_divergence_rejects_field_of_wrong_dimension():
    coords = analytic_points()
    with pytest.raises(ValueError, match="divergence needs a field with 2 components, got 1"):
        divergence(wave(coords), coords)

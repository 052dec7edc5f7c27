import pytest
import torch

from hypersiren.core.coordinates import cell_centres
from hypersiren.single.finite_differences import discrete_laplacian, sobel_gradient


def field_on_grid(function, height, width):
    """``function(row, col)`` sampled at the pixel centres of ``cell_centres``, ``(H, W)`` float64."""
    coords = cell_centres((height, width)).double().view(height, width, 2)
    return function(coords[..., 0], coords[..., 1])


INTERIOR = (slice(2, -2), slice(2, -2))  # away from the replicated border
EXACT = dict(rtol=1e-4, atol=1e-4)  # cell_centres is float32: exact up to its rounding


@pytest.mark.parametrize("height, width", [(32, 32), (24, 40)])
def test_sobel_gradient_of_a_ramp_is_exact_in_coordinate_units(height, width):
    image = field_on_grid(lambda row, col: 0.7 * row - 1.3 * col, height, width)
    gradient = sobel_gradient(image)
    assert gradient.shape == (2, height, width)
    torch.testing.assert_close(gradient[0][INTERIOR], torch.full_like(gradient[0][INTERIOR], 0.7), **EXACT)
    torch.testing.assert_close(gradient[1][INTERIOR], torch.full_like(gradient[1][INTERIOR], -1.3), **EXACT)


@pytest.mark.parametrize("height, width", [(32, 32), (24, 40)])
def test_laplacian_of_a_quadratic_is_exact_in_coordinate_units(height, width):
    image = field_on_grid(lambda row, col: row**2 + 3 * col**2 + row * col, height, width)
    laplacian = discrete_laplacian(image)
    assert laplacian.shape == (height, width)
    torch.testing.assert_close(laplacian[INTERIOR], torch.full_like(laplacian[INTERIOR], 8.0), **EXACT)


def test_filters_match_analytic_derivatives_of_a_smooth_image():
    # f = sin(2 row) cos(3 col): ∇f = (2 cos 2r cos 3c, -3 sin 2r sin 3c), Δf = -13 f.
    height, width = 128, 96
    image = field_on_grid(lambda row, col: torch.sin(2 * row) * torch.cos(3 * col), height, width)
    expected_gradient = torch.stack(
        [
            field_on_grid(lambda row, col: 2 * torch.cos(2 * row) * torch.cos(3 * col), height, width),
            field_on_grid(lambda row, col: -3 * torch.sin(2 * row) * torch.sin(3 * col), height, width),
        ]
    )
    gradient_error = (sobel_gradient(image) - expected_gradient)[(slice(None), *INTERIOR)].abs().max()
    laplacian_error = (discrete_laplacian(image) - (-13 * image))[INTERIOR].abs().max()
    assert gradient_error < 0.01 * 3  # the Sobel smoothing is second order in the pixel size
    assert laplacian_error < 0.01 * 13


def test_leading_dimensions_are_kept():
    images = torch.rand(2, 3, 16, 20)
    assert sobel_gradient(images).shape == (2, 3, 2, 16, 20)
    assert discrete_laplacian(images).shape == (2, 3, 16, 20)
    torch.testing.assert_close(sobel_gradient(images)[1, 2], sobel_gradient(images[1, 2]))


def test_constant_image_has_zero_derivatives_including_the_border():
    image = torch.full((1, 10, 12), 0.3)
    assert sobel_gradient(image).abs().max() == 0
    assert discrete_laplacian(image).abs().max() == 0

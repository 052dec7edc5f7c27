import torch
from einops import rearrange

from hypersiren.core.coordinates import cell_centres
from hypersiren.core.diffops import gradient, laplacian
from hypersiren.core.siren import Siren
from hypersiren.single.coordinate_mlps import coordinate_mlp
from hypersiren.single.field_images import derivative_images, render_image, window_grid


def small_siren(out_features=1):
    torch.manual_seed(0)
    return Siren(2, 32, 2, out_features)


def test_render_on_the_unit_window_is_the_fitted_grid():
    siren = small_siren(out_features=3)
    image = render_image(siren, 12, 10)
    expected = rearrange(siren(cell_centres((12, 10))), "(h w) c -> c h w", h=12).detach()
    assert image.shape == (3, 12, 10)
    torch.testing.assert_close(image, expected)


def test_chunking_does_not_change_the_render():
    siren = small_siren()
    torch.testing.assert_close(render_image(siren, 20, 20, chunk=7), render_image(siren, 20, 20))


def test_window_extent_zooms_and_extrapolates():
    torch.testing.assert_close(window_grid(8, 8, extent=0.5), 0.5 * cell_centres((8, 8)))
    assert window_grid(8, 8, extent=2.0).abs().max() == 2.0 * cell_centres((8, 8)).abs().max()
    siren = small_siren()
    wide = render_image(siren, 16, 16, extent=2.0)
    centre = render_image(siren, 8, 8, extent=1.0)
    # A 16x16 render of [-2, 2]² has the pixel centres of an 8x8 render of [-1, 1]² in its middle.
    torch.testing.assert_close(wide[:, 4:12, 4:12], centre)


def test_derivative_images_equal_autograd_at_the_same_points():
    siren = small_siren()
    coords = window_grid(9, 7, extent=1.5).requires_grad_(True)
    values = siren(coords)
    expected_norm = gradient(values, coords).norm(dim=-1).view(1, 9, 7)
    expected_laplacian = laplacian(values, coords).view(1, 9, 7)
    with torch.no_grad():  # figures are often made under no_grad: derivatives must still work
        gradient_norm, field_laplacian = derivative_images(siren, 9, 7, extent=1.5, chunk=10)
    torch.testing.assert_close(gradient_norm, expected_norm.detach())
    torch.testing.assert_close(field_laplacian, expected_laplacian.detach(), rtol=1e-4, atol=1e-4)  # |Δ| ~ 10²


def test_relu_network_has_zero_laplacian_image():
    relu = coordinate_mlp("relu", 2, 16, 2, 1)
    gradient_norm, field_laplacian = derivative_images(relu, 8, 8)
    assert gradient_norm.abs().max() > 0
    assert field_laplacian.abs().max() == 0

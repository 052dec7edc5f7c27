import pytest
import torch

pytest.importorskip("skimage")

from hypersiren.core.coordinates import cell_centres  # noqa: E402
from hypersiren.core.metrics import psnr  # noqa: E402
from hypersiren.core.pixels import (  # noqa: E402
    to_model_space,
    to_unit_range,
)
from hypersiren.single.coordinate_mlps import coordinate_mlp  # noqa: E402
from hypersiren.single.field_images import render_image  # noqa: E402
from hypersiren.single.finite_differences import discrete_laplacian, sobel_gradient  # noqa: E402
from hypersiren.single.fitting import (
    FitConfig,
    fit_gradient,
    fit_laplacian,
    fit_values,
    harmonic_basis,
    image_psnr,
    match_harmonic,
    minimize,
)
from hypersiren.single.photos import load_photo  # noqa: E402


def photo(name: str, size: int) -> torch.Tensor:
    return to_model_space(load_photo(name, size))  # (1, S, S) in [-1, 1]


def network(activation: str, omega: float = 30.0) -> torch.nn.Module:
    torch.manual_seed(0)
    return coordinate_mlp(activation, 2, 64, 3, 1, omega=omega)


# Derivative fits use ω₀ = 10 on these 32 px images: ω₀ = 30 is the paper's choice for 256 px, and on a
# coarse grid it lets the network meet derivative targets with oscillations between the pixels.
DERIVATIVE_OMEGA = 10.0


@pytest.fixture(scope="module")
def camera64():
    return photo("camera", 64)


@pytest.fixture(scope="module")
def siren_fit(camera64):
    return fit_values(network("siren"), camera64, FitConfig(steps=150))


def test_short_siren_fit_of_a_real_photo_beats_25_db(siren_fit):
    assert siren_fit.final_psnr > 25.0


def test_psnr_history_has_one_entry_per_step_and_rises(siren_fit):
    assert len(siren_fit.psnr) == 150
    assert siren_fit.psnr[0] < 15.0 < 25.0 < siren_fit.psnr[-1] <= siren_fit.final_psnr + 0.5


def test_siren_beats_relu_by_a_clear_margin_on_the_same_budget(camera64, siren_fit):
    relu_fit = fit_values(network("relu"), camera64, FitConfig(steps=150))
    assert siren_fit.final_psnr > relu_fit.final_psnr + 10.0


def test_final_psnr_is_the_psnr_of_the_rendered_network(camera64):
    net = network("siren")
    result = fit_values(net, camera64, FitConfig(steps=5))
    rendered = render_image(net, 64, 64)
    assert result.final_psnr == pytest.approx(float(psnr(to_unit_range(rendered), to_unit_range(camera64))), abs=1e-3)


def test_gradient_only_fit_recovers_the_photo_up_to_a_constant():
    camera = photo("camera", 32)
    net = network("siren", DERIVATIVE_OMEGA)
    result = fit_gradient(net, sobel_gradient(camera)[0], camera, FitConfig(steps=200))
    assert result.final_psnr > 26.0
    # The constant really is lost: an offset added to the network would score the same.
    rendered = render_image(net, 32, 32)
    assert image_psnr(rendered + 0.3, camera, match_degree=0) == pytest.approx(result.final_psnr, abs=1e-3)


def test_laplacian_only_fit_recovers_the_photo_up_to_harmonic_functions():
    camera = photo("camera", 32)
    net = network("siren", DERIVATIVE_OMEGA)
    result = fit_laplacian(net, discrete_laplacian(camera), camera, FitConfig(steps=150, lr=3e-4))
    # Looser than the gradient fit: the Laplacian also loses ramps and every other harmonic function.
    # A target with the wrong spacing (x4) scores about 11 / 14 dB here, one with the wrong sign 8 / 10 dB.
    assert result.final_psnr > 13.0
    assert image_psnr(render_image(net, 32, 32), camera, match_degree=2) > 19.0


def test_poisson_blend_reconstructs_the_blend_not_either_photo():
    camera, astronaut = photo("camera", 32), photo("astronaut", 32)
    blend_gradient = 0.5 * sobel_gradient(camera)[0] + 0.5 * sobel_gradient(astronaut)[0]
    blend = 0.5 * camera + 0.5 * astronaut
    net = network("siren", DERIVATIVE_OMEGA)
    result = fit_gradient(net, blend_gradient, blend, FitConfig(steps=200))
    rendered = render_image(net, 32, 32)
    assert result.final_psnr > 26.0
    assert image_psnr(rendered, camera, 0) < 20.0 and image_psnr(rendered, astronaut, 0) < 20.0


def test_match_harmonic_removes_exactly_the_harmonic_polynomials():
    torch.manual_seed(0)
    reference = torch.rand(2, 12, 10) * 2 - 1
    coords = cell_centres((12, 10)).view(12, 10, 2)
    row, col = coords[..., 0], coords[..., 1]
    shifted = reference + 0.2  # per-image constant
    ramped = reference + 0.3 * row - 0.1 * col
    saddle = reference + 0.4 * (row**2 - col**2) + 0.2 * row * col
    bowl = reference + 0.4 * (row**2 + col**2)  # Δ = 1.6 ≠ 0: not harmonic, must stay
    torch.testing.assert_close(match_harmonic(shifted, reference, 0), reference)
    torch.testing.assert_close(match_harmonic(ramped, reference, 1), reference)
    torch.testing.assert_close(match_harmonic(saddle, reference, 2), reference)
    assert (match_harmonic(bowl, reference, 2) - reference).abs().max() > 0.1
    assert (match_harmonic(ramped, reference, 0) - reference).abs().max() > 0.1


def test_harmonic_basis_functions_have_zero_laplacian():
    basis = harmonic_basis(64, 64, degree=3).T.reshape(7, 64, 64)
    interior = discrete_laplacian(basis.double())[:, 2:-2, 2:-2]
    assert interior.abs().max() < 1e-3


def test_image_psnr_without_matching_is_plain_psnr():
    torch.manual_seed(0)
    prediction, reference = torch.rand(1, 8, 8) * 2 - 1, torch.rand(1, 8, 8) * 2 - 1
    expected = float(psnr(to_unit_range(prediction).unsqueeze(0), to_unit_range(reference).unsqueeze(0)))
    assert image_psnr(prediction, reference) == pytest.approx(expected)


def test_minimize_records_each_step_before_its_update_and_descends():
    torch.manual_seed(0)
    net = torch.nn.Linear(1, 1)
    inputs = torch.randn(64, 1)
    weights = []

    def step_loss():
        weights.append(net.weight.item())
        loss = (net(inputs) - (3 * inputs + 1)).square().mean()
        return loss, loss.item()

    records, seconds = minimize(net, step_loss, steps=50, lr=0.1)
    assert len(records) == 50 and seconds > 0
    assert len(set(weights)) == 50  # every step updated the weights
    assert records[-1] < 0.5 * records[0]  # the loss of each step's weights, before its update, falls

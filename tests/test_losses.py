import pytest
import torch

from hypersiren.across.config import TrainConfig
from hypersiren.across.data import Batch
from hypersiren.across.model import Prediction
from hypersiren.across.objective import hypernetwork_loss, latent_l2, missing_log_mse, recipe_loss, weight_l2
from hypersiren.core.losses import gradient_mse, image_mse, laplacian_mse
from hypersiren.core.render import LayerParams


def known_params():
    """Two layers whose squared entries sum to 6*1 + 3*4 + 3*9 + 0 = 45 over 13 entries."""
    return [
        LayerParams(torch.ones(1, 2, 3), torch.full((1, 3), -2.0)),
        LayerParams(torch.full((1, 3, 1), 3.0), torch.zeros(1, 1)),
    ]


def test_image_mse():
    prediction = torch.zeros(2, 5, 3)
    target = torch.zeros(2, 5, 3)
    target[0, :, 0] = 0.5  # 5 of 30 values off by 0.5
    assert image_mse(prediction, target).item() == pytest.approx(5 * 0.25 / 30)


def test_latent_l2():
    assert latent_l2(torch.tensor([[1.0, 2.0], [3.0, -4.0]])).item() == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_weight_l2_is_the_mean_over_every_generated_entry():
    # a mean of per-tensor means would give (1 + 4 + 9 + 0) / 4 = 3.5
    assert weight_l2(known_params()).item() == pytest.approx(45 / 13)


def test_hypernetwork_loss_combines_the_weighted_terms():
    values = torch.zeros(1, 4, 1, requires_grad=True)
    target = torch.full((1, 4, 1), 0.2)  # image MSE 0.04
    latent = torch.tensor([[1.0, 3.0]])  # latent L2 5
    prediction = Prediction(values, latent, known_params())  # weight L2 45/13
    total, terms = hypernetwork_loss(prediction, target, latent_weight=0.5, params_weight=2.0)
    assert total.item() == pytest.approx(0.04 + 0.5 * 5 + 2.0 * 45 / 13)
    assert {name: value.item() for name, value in terms.items()} == pytest.approx(
        {"image_mse": 0.04, "latent_l2": 5.0, "weight_l2": 45 / 13}
    )
    assert total.requires_grad and not any(value.requires_grad for value in terms.values())


def test_hypernetwork_loss_default_weights():
    prediction = Prediction(torch.zeros(1, 4, 1), torch.tensor([[1.0, 3.0]]), known_params())
    total, _ = hypernetwork_loss(prediction, torch.full((1, 4, 1), 0.2))
    assert total.item() == pytest.approx(0.04 + 0.1 * 5 + 100.0 * 45 / 13)


@pytest.mark.parametrize("loss", ["mse", "log_mse"])
def test_the_recipe_loss_is_the_configured_objective(loss):
    values, target = torch.zeros(2, 4, 1), torch.full((2, 4, 1), 0.2)
    target[0, 0] = 1.0  # an observed point: only log_mse treats it apart from the missing ones
    observed = torch.tensor([[True, False, False, False], [False] * 4])
    batch = Batch(image=None, mask=None, coords=None, target=target, observed=observed)
    prediction = Prediction(values, torch.tensor([[1.0, 3.0]]), known_params())
    train = TrainConfig(loss=loss, latent_weight=0.5, params_weight=2.0)
    total, _ = recipe_loss(prediction, batch, train)
    image_term = missing_log_mse(values, target, observed) if loss == "log_mse" else image_mse(values, target)
    assert total.item() == pytest.approx(image_term.item() + 0.5 * 5 + 2.0 * 45 / 13)


def quadratic_field():
    coords = torch.rand(1, 20, 2, dtype=torch.float64, requires_grad=True)
    x, y = coords[..., :1], coords[..., 1:]
    return coords, x**2 + 3 * x * y  # gradient (2x + 3y, 3x), Laplacian 2


def test_gradient_mse_is_zero_for_the_true_gradient_only():
    coords, values = quadratic_field()
    x, y = coords[..., :1].detach(), coords[..., 1:].detach()
    true_gradient = torch.cat([2 * x + 3 * y, 3 * x], dim=-1)
    assert gradient_mse(values, coords, true_gradient).item() == pytest.approx(0.0, abs=1e-20)
    assert gradient_mse(values, coords, true_gradient + 0.5).item() == pytest.approx(0.25)


def test_laplacian_mse_is_zero_for_the_true_laplacian_only():
    coords, values = quadratic_field()
    assert laplacian_mse(values, coords, torch.full((1, 20, 1), 2.0)).item() == pytest.approx(0.0, abs=1e-20)
    assert laplacian_mse(values, coords, torch.zeros(1, 20, 1)).item() == pytest.approx(4.0)


def test_missing_log_mse_is_mean_log_error_on_missing_points_plus_mse_on_observed_ones():
    target = torch.zeros(2, 4, 1)
    prediction = torch.tensor([[0.1, 0.2, 1.0, 1.0], [0.3, 0.0, 0.0, 2.0]]).unsqueeze(-1)
    observed = torch.tensor([[True, True, False, False], [True, True, True, False]])
    expected_missing = (torch.log(torch.tensor(1.0 + 1e-5)) + torch.log(torch.tensor(4.0 + 1e-5))) / 2
    expected_observed = (0.01 + 0.04 + 0.09) / 5
    actual = missing_log_mse(prediction, target, observed, floor=1e-5)
    torch.testing.assert_close(actual, expected_missing + expected_observed)


def test_missing_log_mse_weighs_an_image_by_its_relative_error():
    # halving the error of an easy image (one missing pixel, small error) matters as much as of a hard one
    target = torch.zeros(2, 4, 1)
    observed = torch.tensor([[False] * 4, [True, True, True, False]])

    def loss(hard_error: float, easy_error: float) -> torch.Tensor:
        prediction = torch.tensor([[hard_error] * 4, [0, 0, 0, easy_error]]).unsqueeze(-1)
        return missing_log_mse(prediction, target, observed)

    easy_gain, hard_gain = loss(1.0, 0.2) - loss(1.0, 0.1), loss(1.0, 0.2) - loss(0.5, 0.2)
    torch.testing.assert_close(easy_gain, hard_gain, rtol=1e-3, atol=0)


def test_missing_log_mse_with_every_point_observed_is_the_mse():
    prediction, target = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    observed = torch.ones(2, 5, dtype=torch.bool)
    torch.testing.assert_close(missing_log_mse(prediction, target, observed), image_mse(prediction, target))

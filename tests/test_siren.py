import math

import pytest
import torch

from hypersiren.core.render import render
from hypersiren.core.siren import Siren, SirenConfig, init_siren_params


def assert_uniform(tensor, bound):
    """Samples of U(-bound, bound): inside the bounds, reaching near them, std bound/sqrt(3) within 3%."""
    assert tensor.abs().max() <= bound
    assert tensor.abs().max() > 0.99 * bound
    assert tensor.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert abs(tensor.mean().item()) < 0.02 * bound


def test_keywords_build_the_configured_layers():
    siren = Siren(in_features=3, hidden_features=8, hidden_layers=2, out_features=5)
    assert [tuple(w.shape) for w in siren.weights] == [(1, 3, 8), (1, 8, 8), (1, 8, 8), (1, 8, 5)]
    assert [tuple(b.shape) for b in siren.biases] == [(1, 8), (1, 8), (1, 8), (1, 5)]
    assert siren(torch.zeros(7, 3)).shape == (7, 5)


def test_first_layer_init_is_uniform_one_over_fan_in():
    torch.manual_seed(0)
    fan_in = 512
    siren = Siren(in_features=fan_in, hidden_features=512, hidden_layers=0, out_features=1)
    assert_uniform(siren.weights[0], 1 / fan_in)


@pytest.mark.parametrize("hidden_omega", [30.0, 60.0])
def test_hidden_and_last_layer_init_scale_with_hidden_omega(hidden_omega):
    torch.manual_seed(0)
    fan_in = 512
    siren = Siren(2, fan_in, hidden_layers=1, out_features=256, first_omega=10.0, hidden_omega=hidden_omega)
    bound = math.sqrt(6 / fan_in) / hidden_omega
    assert_uniform(siren.weights[1], bound)
    assert_uniform(siren.weights[2], bound)
    assert siren.weights[0].abs().max() <= 1 / 2  # the first layer ignores omega


def test_init_is_independent_per_batch_sample():
    params = init_siren_params(SirenConfig(hidden_features=8, hidden_layers=1), batch_size=3)
    for layer in params:
        assert not torch.equal(layer.weight[0], layer.weight[1])
        assert not torch.equal(layer.bias[1], layer.bias[2])


def test_activations_of_a_wide_siren_are_arcsine_distributed():
    torch.manual_seed(0)
    omega = 30.0
    siren = Siren(2, 512, hidden_layers=3, out_features=1, first_omega=omega, hidden_omega=omega)
    hidden = torch.rand(2048, 2) * 2 - 1
    levels = torch.linspace(-0.9, 0.9, 19)
    arcsine_cdf = 0.5 + torch.asin(levels) / math.pi
    with torch.no_grad():
        for index, (weight, bias) in enumerate(siren.params[:-1]):
            if index > 0:
                # the init's premise: for arcsine inputs, omega * (x @ W) ~ N(0, 1)
                assert (omega * hidden @ weight[0]).std().item() == pytest.approx(1.0, rel=0.1)
            hidden = torch.sin(omega * (hidden @ weight[0] + bias[0]))
            assert hidden.std().item() == pytest.approx(1 / math.sqrt(2), rel=0.1)
            sorted_values = hidden.flatten().sort().values
            empirical_cdf = torch.searchsorted(sorted_values, levels).float() / sorted_values.numel()
            # a Gaussian of the same std is ~0.09 away at |y| = 0.5
            assert (empirical_cdf - arcsine_cdf).abs().max() < 0.05


def test_forward_equals_render_of_params_for_flat_and_batched_coords():
    torch.manual_seed(0)
    siren = Siren(2, 16, 2, 3, first_omega=30.0, hidden_omega=15.0)
    coords = torch.rand(4, 10, 2) * 2 - 1
    with torch.no_grad():
        per_batch = siren(coords)
        flat = siren(coords[1])
        expected = torch.cat([render(siren.params, coords[i : i + 1], 30.0, 15.0) for i in range(4)])
    assert per_batch.shape == (4, 10, 3)
    assert flat.shape == (10, 3)
    torch.testing.assert_close(per_batch, expected)
    torch.testing.assert_close(flat, expected[1])


def test_first_omega_is_separate_from_hidden_omega():
    def build(first_omega):
        torch.manual_seed(0)
        return Siren(2, 16, 1, 1, first_omega=first_omega, hidden_omega=30.0)

    slow, fast = build(5.0), build(30.0)
    for slow_weight, fast_weight in zip(slow.weights, fast.weights, strict=True):
        assert torch.equal(slow_weight, fast_weight)  # first_omega does not enter the init
    coords = torch.rand(1, 10, 2) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(slow(coords), render(slow.params, coords, 5.0, 30.0))
        assert not torch.allclose(slow(coords), fast(coords))


def test_forward_trains_its_parameters():
    siren = Siren(2, 8, 1, 1)
    siren(torch.rand(5, 2)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in siren.parameters())


@pytest.mark.parametrize(
    ("coords_shape", "message"),
    [((2,), r"coords must be \(\.\.\., N, 2\)"), ((4, 3), "3 dims per point but the SIREN takes 2")],
)
def test_forward_rejects_bad_coords(coords_shape, message):
    with pytest.raises(ValueError, match=message):
        Siren(2, 8, 1, 1)(torch.zeros(coords_shape))

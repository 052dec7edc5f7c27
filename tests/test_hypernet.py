import math

import pytest
import torch

from hypersiren.across.hypernet import HyperNetwork
from hypersiren.core.render import render
from hypersiren.core.siren import SirenConfig, bias_bound, weight_bound

SIREN = SirenConfig(in_features=2, hidden_features=128, hidden_layers=2, out_features=3)
LATENT_DIM = 32


@pytest.fixture(scope="module")
def hypernet():
    torch.manual_seed(0)
    return HyperNetwork(SIREN, latent_dim=LATENT_DIM, hidden_features=64, hidden_layers=1)


def test_emits_one_siren_per_latent_with_the_configured_shapes(hypernet):
    params = hypernet(torch.randn(5, LATENT_DIM))
    assert len(params) == len(SIREN.layer_shapes)
    for (weight, bias), (fan_in, fan_out) in zip(params, SIREN.layer_shapes, strict=True):
        assert weight.shape == (5, fan_in, fan_out)
        assert bias.shape == (5, fan_out)
    assert render(params, torch.rand(5, 7, 2)).shape == (5, 7, 3)


def test_generated_params_have_siren_init_scale(hypernet):
    with torch.no_grad():
        params = hypernet(torch.randn(16, LATENT_DIM, generator=torch.Generator().manual_seed(1)))
    for layer, (weight, bias) in enumerate(params):
        if layer < len(params) - 1:  # the last layer has only 3 outputs: too few biases for a std
            assert bias.std().item() == pytest.approx(bias_bound(SIREN, layer) / math.sqrt(3), rel=0.25)
        assert weight.std().item() == pytest.approx(weight_bound(SIREN, layer) / math.sqrt(3), rel=0.25)


def test_different_latents_give_different_sirens(hypernet):
    latent = torch.randn(2, LATENT_DIM, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        params = hypernet(latent)
        same = hypernet(latent[:1].expand(2, -1))
        values = render(params, (torch.rand(1, 50, 2) * 2 - 1).expand(2, -1, -1))
    for layer, (weight, bias) in enumerate(params):
        torch.testing.assert_close(same[layer].weight[0], same[layer].weight[1])
        assert (weight[0] - weight[1]).std() > 0.02 * weight_bound(SIREN, layer) / math.sqrt(3)
        assert not torch.allclose(bias[0], bias[1])
    assert (values[0] - values[1]).abs().max() > 1e-3


@pytest.mark.parametrize("hidden_layers", [0, 2])
def test_latent_dependent_part_is_delta_scale_times_init_std(hidden_layers):
    def build(delta_scale):
        torch.manual_seed(3)  # same trunk and head bias: only the head weight's scale differs
        return HyperNetwork(SIREN, LATENT_DIM, hidden_features=64, hidden_layers=hidden_layers, delta_scale=delta_scale)

    latent = torch.randn(32, LATENT_DIM, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        params, latent_free = build(0.1)(latent), build(0.0)(latent)
    for layer, (weight, _) in enumerate(latent_free):
        assert torch.equal(weight, weight[:1].expand_as(weight))  # delta_scale=0: the latent is ignored
        delta = params[layer].weight - weight
        init_std = weight_bound(SIREN, layer) / math.sqrt(3)
        assert delta.square().mean().sqrt().item() == pytest.approx(0.1 * init_std, rel=0.3)


def test_gradients_reach_every_latent(hypernet):
    latent = torch.randn(3, LATENT_DIM, requires_grad=True)
    render(hypernet(latent), torch.rand(3, 20, 2) * 2 - 1).square().sum().backward()
    assert (latent.grad.norm(dim=1) > 0).all()


def test_every_generated_tensor_depends_on_the_latent(hypernet):
    latent = torch.randn(2, LATENT_DIM, requires_grad=True)
    for tensor in (tensor for layer in hypernet(latent) for tensor in layer):
        (grad,) = torch.autograd.grad(tensor.sum(), latent, retain_graph=True)
        assert (grad.norm(dim=1) > 0).all()


@pytest.mark.parametrize("shape", [(LATENT_DIM,), (2, LATENT_DIM + 1), (2, 1, LATENT_DIM)])
def test_rejects_latent_of_wrong_shape(hypernet, shape):
    with pytest.raises(ValueError, match=rf"latent must be \(B, {LATENT_DIM}\)"):
        hypernet(torch.zeros(shape))

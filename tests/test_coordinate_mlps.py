import math

import pytest
import torch

from hypersiren.core.siren import Siren
from hypersiren.single.coordinate_mlps import ACTIVATIONS, PositionalEncoding, coordinate_mlp, nyquist_frequencies


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_network_maps_coordinates_to_values(activation):
    net = coordinate_mlp(activation, in_features=2, hidden_features=16, hidden_layers=2, out_features=3)
    assert net(torch.rand(50, 2)).shape == (50, 3)
    assert net(torch.rand(4, 50, 2)).shape == (4, 50, 3)


@pytest.mark.parametrize("activation", ["relu", "tanh", "siren"])
def test_same_width_and_depth_means_same_parameter_count(activation):
    count = sum(p.numel() for p in coordinate_mlp(activation, 2, 32, 3, 1).parameters())
    assert count == (2 * 32 + 32) + 3 * (32 * 32 + 32) + (32 + 1)


def test_siren_is_the_library_siren_with_its_omega():
    net = coordinate_mlp("siren", 2, 16, 1, 1, omega=12.0)
    assert isinstance(net, Siren)
    assert net.config.first_omega == net.config.hidden_omega == 12.0


def test_activations_differ_where_they_should():
    torch.manual_seed(0)
    relu = coordinate_mlp("relu", 1, 32, 1, 1)
    coords = torch.linspace(-1, 1, 101).unsqueeze(1).requires_grad_(True)
    (slope,) = torch.autograd.grad(relu(coords).sum(), coords, create_graph=True)
    (curvature,) = torch.autograd.grad(slope.sum(), coords, allow_unused=True, materialize_grads=True)
    assert curvature.abs().max() == 0  # piecewise linear: why ReLU cannot be supervised by a Laplacian


def test_positional_encoding_features():
    encoding = PositionalEncoding(num_frequencies=3)
    coords = torch.tensor([[0.25, -0.5]])
    features = encoding(coords)
    assert features.shape == (1, encoding.out_features(2)) == (1, 2 * (1 + 2 * 3))
    angles = torch.tensor([0.25 * math.pi * f for f in (1, 2, 4)] + [-0.5 * math.pi * f for f in (1, 2, 4)])
    torch.testing.assert_close(features[0, :2], coords[0])
    torch.testing.assert_close(features[0, 2:8], torch.sin(angles))
    torch.testing.assert_close(features[0, 8:], torch.cos(angles))


def test_nyquist_frequencies_follow_the_paper_rule():
    assert nyquist_frequencies(256) == 6
    assert nyquist_frequencies(64) == 4
    assert nyquist_frequencies(4) == 1  # never fewer than one octave


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="gelu"):
        coordinate_mlp("gelu")


@pytest.mark.parametrize("activation", ["siren", "relu_pe"])
def test_the_same_call_gives_the_same_weights_and_leaves_torchs_generator_alone(activation):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first, second = coordinate_mlp(activation, hidden_features=8), coordinate_mlp(activation, hidden_features=8)
    assert torch.rand(1) == before  # the global stream was not consumed
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = coordinate_mlp(activation, hidden_features=8, seed=1)
    assert not torch.equal(next(iter(first.parameters())), next(iter(other.parameters())))

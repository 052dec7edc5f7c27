import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from hypersiren.core import render as render_module
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.render import LayerParams, render
from hypersiren.core.siren import SirenConfig, init_siren_params

CONFIG = SirenConfig(
    in_features=2, hidden_features=16, hidden_layers=2, out_features=3, first_omega=30.0, hidden_omega=20.0
)


def reference_render(params, coords, first_omega, hidden_omega, shifts=None):
    """One sample at a time through nn.functional.linear: independent of render's batched GEMMs."""
    outputs = []
    for sample in range(coords.shape[0]):
        hidden = coords[sample]
        for index, (weight, bias) in enumerate(params):
            row = sample if weight.shape[0] > 1 else 0
            hidden = F.linear(hidden, weight[row].T, bias[row])
            if shifts is not None:
                hidden = hidden + shifts[index][sample]
            if index < len(params) - 1:
                hidden = torch.sin((first_omega if index == 0 else hidden_omega) * hidden)
        outputs.append(hidden)
    return torch.stack(outputs)


def random_params(batch_size, dtype=torch.float32):
    generator = torch.Generator().manual_seed(batch_size)
    return [LayerParams(*(t.to(dtype) for t in layer)) for layer in init_siren_params(CONFIG, batch_size, generator)]


def test_render_matches_reference_per_sample_params():
    params = random_params(4)
    coords = torch.rand(4, 50, 2) * 2 - 1
    values = render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega)
    assert values.shape == (4, 50, 3)
    torch.testing.assert_close(values, reference_render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega))


def test_render_broadcasts_batch_one_params_over_coords_batch():
    params = random_params(1)
    coords = torch.rand(3, 20, 2) * 2 - 1
    values = render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega)
    assert values.shape == (3, 20, 3)
    torch.testing.assert_close(values, reference_render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega))


def test_render_uses_each_omega_where_it_belongs():
    params = random_params(2)
    coords = torch.rand(2, 30, 2) * 2 - 1
    swapped = render(params, coords, CONFIG.hidden_omega, CONFIG.first_omega)
    torch.testing.assert_close(swapped, reference_render(params, coords, CONFIG.hidden_omega, CONFIG.first_omega))
    assert not torch.allclose(swapped, render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega))


def test_render_in_float64():
    params = random_params(2, torch.float64)
    coords = torch.rand(2, 30, 2, dtype=torch.float64) * 2 - 1
    values = render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega)
    assert values.dtype == torch.float64
    expected = reference_render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega)
    torch.testing.assert_close(values, expected, rtol=1e-12, atol=1e-12)


def random_shifts(batch_size, num_points):
    generator = torch.Generator().manual_seed(num_points)
    return [
        0.1 * torch.randn(batch_size, num_points, fan_out, generator=generator) for _, fan_out in CONFIG.layer_shapes
    ]


def first_order_grads(render_fn, coords, upstream, backward_passes=1, shifted=False):
    """Gradients of ``sum(render * upstream)`` w.r.t. every param tensor, the coords (and the shifts)."""
    coords = coords.clone().requires_grad_()
    params = [
        LayerParams(w.clone().requires_grad_(), b.clone().requires_grad_()) for w, b in random_params(2, coords.dtype)
    ]
    shifts = [s.to(coords.dtype).requires_grad_() for s in random_shifts(*coords.shape[:2])] if shifted else None
    objective = (render_fn(params, coords, CONFIG.first_omega, CONFIG.hidden_omega, shifts) * upstream).sum()
    for _ in range(backward_passes):
        objective.backward(retain_graph=True)
    return [t.grad for layer in params for t in layer] + [coords.grad] + [s.grad for s in shifts or []]


def test_render_adds_per_point_shifts_to_each_layer():
    params = random_params(2)
    coords = torch.rand(2, 40, 2) * 2 - 1
    shifts = random_shifts(2, 40)
    values = render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega, shifts)
    torch.testing.assert_close(
        values, reference_render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega, shifts)
    )
    assert not torch.allclose(values, render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega))


def test_render_with_shared_params_takes_each_images_own_shifts():
    params = random_params(1)
    coords = torch.rand(3, 20, 2) * 2 - 1
    shifts = random_shifts(3, 20)
    values = render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega, shifts)
    torch.testing.assert_close(
        values, reference_render(params, coords, CONFIG.first_omega, CONFIG.hidden_omega, shifts)
    )


def test_render_rejects_shifts_of_the_wrong_shape():
    with pytest.raises(ValueError, match="shifts must be one"):
        render(random_params(2), torch.zeros(2, 5, 2), shifts=random_shifts(2, 4))


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("cos_chunk", [render_module.COS_CHUNK, 7])  # 7: many chunks, a ragged last one
def test_render_gradients_match_reference(monkeypatch, cos_chunk, shifted):
    # float64: the hand-written backward must equal autograd's up to rounding, whatever the draw
    # (in float32 the two summation orders differ by ~1e-5 on some draws, too close to any fixed tolerance)
    monkeypatch.setattr(render_module, "COS_CHUNK", cos_chunk)
    coords = torch.rand(2, 25, 2, dtype=torch.float64) * 2 - 1
    upstream = torch.randn(2, 25, 3, dtype=torch.float64)
    grads = first_order_grads(render, coords, upstream, shifted=shifted)
    for grad, expected in zip(
        grads, first_order_grads(reference_render, coords, upstream, shifted=shifted), strict=True
    ):
        assert grad.dtype == torch.float64 and grad.abs().sum() > 0
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


def test_render_backward_twice_with_retained_graph_accumulates_the_same_gradients():
    # backward works in place on gradient buffers: a second pass must still see intact saved tensors
    coords = torch.rand(2, 25, 2) * 2 - 1
    upstream = torch.randn(2, 25, 3)
    once = first_order_grads(render, coords, upstream)
    twice = first_order_grads(render, coords, upstream, backward_passes=2)
    for single, double in zip(once, twice, strict=True):
        torch.testing.assert_close(double, 2 * single)


@pytest.mark.parametrize(
    ("coords_shape", "params_batch", "message"),
    [
        ((20, 2), 1, r"coords must be \(B, N, D_in\)"),
        ((1, 1, 20, 2), 1, r"coords must be \(B, N, D_in\)"),
        ((1, 20, 3), 1, r"3 dims per point but the SIREN takes 2"),
        ((3, 20, 2), 2, r"params are for 2 samples but coords for 3"),
    ],
)
def test_render_rejects_bad_coords(coords_shape, params_batch, message):
    with pytest.raises(ValueError, match=message):
        render(random_params(params_batch), torch.zeros(coords_shape))


def test_render_rejects_integer_coords():
    with pytest.raises(ValueError, match="floating point"):
        render(random_params(1), torch.zeros(1, 4, 2, dtype=torch.long))


def test_cell_centres_are_pixel_centred_row_major():
    height, width = 4, 6
    grid = cell_centres((height, width))
    assert grid.shape == (height * width, 2)
    rows = torch.linspace(-1 + 1 / height, 1 - 1 / height, height)
    cols = torch.linspace(-1 + 1 / width, 1 - 1 / width, width)
    as_image = grid.view(height, width, 2)
    torch.testing.assert_close(as_image[..., 0], rows[:, None].expand(height, width))  # first coord is the row
    torch.testing.assert_close(as_image[..., 1], cols[None, :].expand(height, width))
    assert grid.min() > -1 and grid.max() < 1
    torch.testing.assert_close(grid.mean(dim=0), torch.zeros(2), atol=1e-6, rtol=0)


def test_cell_centres_2x_pixel_centres_average_to_1x_grid():
    height, width = 3, 5
    fine = cell_centres((2 * height, 2 * width)).view(height, 2, width, 2, 2)
    torch.testing.assert_close(fine.mean(dim=(1, 3)).reshape(-1, 2), cell_centres((height, width)))


@pytest.mark.parametrize("contiguous", [True, False])  # False: the one-shot path GPUs also take
def test_mul_cos_multiplies_the_gradient_by_cos_in_place(monkeypatch, contiguous):
    monkeypatch.setattr(render_module, "COS_CHUNK", 7)
    pre = torch.randn(3, 5, 4) * 10
    grad = torch.randn(3, 4, 5).mT if not contiguous else torch.randn(3, 5, 4)
    expected = grad * torch.cos(pre)
    result = render_module._mul_cos_(grad, pre)
    assert result.data_ptr() == grad.data_ptr()
    torch.testing.assert_close(result, expected)


def test_second_order_gradients_with_shifts_match_reference():
    # create_graph (gradient losses) recomputes the layer with differentiable ops: shifts must flow there too
    def coord_gradient_norm(render_fn):
        coords = (torch.rand(2, 15, 2, generator=torch.Generator().manual_seed(3)) * 2 - 1).requires_grad_()
        shifts = [s.requires_grad_() for s in random_shifts(2, 15)]
        values = render_fn(random_params(2), coords, CONFIG.first_omega, CONFIG.hidden_omega, shifts)
        (coord_grad,) = torch.autograd.grad(values.sum(), coords, create_graph=True)
        return torch.autograd.grad(coord_grad.square().sum(), shifts[:-1])  # the output shift has no coord gradient

    for grad, expected in zip(coord_gradient_norm(render), coord_gradient_norm(reference_render), strict=True):
        assert grad.abs().sum() > 0
        # second derivatives carry ω² (900x) the fp32 rounding of either BLAS; a wrong term is off by O(1)
        torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_cell_centres_of_any_dimension_are_the_axes_cell_centres_row_major(shape):
    grid = cell_centres(shape)
    assert grid.shape == (math.prod(shape), len(shape))
    axes = [(torch.arange(side) + 0.5) * 2 / side - 1 for side in shape]
    expected = torch.stack([torch.tensor(point) for point in itertools.product(*axes)])  # last axis fastest
    torch.testing.assert_close(grid, expected)

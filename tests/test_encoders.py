import pytest
import torch
import torch.nn.functional as F

from hypersiren.across.encoders import ConvEncoder, SetEncoder, UNetEncoder, doubled, pull_push_fill, upsample
from hypersiren.core.coordinates import cell_centres

LATENT_DIM = 12


@pytest.fixture(scope="module")
def conv_encoder():
    torch.manual_seed(0)
    return ConvEncoder(channels=3, latent_dim=LATENT_DIM, widths=(8, 16, 16))


@pytest.fixture(scope="module")
def set_encoder():
    torch.manual_seed(0)
    return SetEncoder(coord_dim=2, value_dim=3, latent_dim=LATENT_DIM, hidden_features=16, hidden_layers=1)


@pytest.mark.parametrize(("height", "width"), [(32, 32), (64, 48), (7, 5)])
def test_conv_encoder_gives_one_latent_per_image_at_any_size(conv_encoder, height, width):
    image = torch.rand(2, 3, height, width) * 2 - 1
    latent, grid = conv_encoder(image, torch.ones(2, 1, height, width, dtype=torch.bool))
    assert grid is None and latent.shape == (2, LATENT_DIM)
    assert not torch.allclose(latent[0], latent[1])  # each image is encoded on its own


def test_conv_encoder_tells_an_observed_black_pixel_from_a_missing_one(conv_encoder):
    image = torch.zeros(1, 3, 16, 16)
    observed = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    missing = observed.clone()
    missing[..., 4:12, 4:12] = False
    with torch.no_grad():
        assert (
            conv_encoder(image, observed).global_latent - conv_encoder(image, missing).global_latent
        ).abs().max() > 1e-4


def test_conv_encoder_ignores_values_of_unobserved_pixels(conv_encoder):
    image = torch.rand(2, 3, 16, 16)
    mask = torch.rand(2, 1, 16, 16) < 0.3
    garbage = torch.where(mask, image, torch.randn_like(image) * 100)
    with torch.no_grad():
        torch.testing.assert_close(conv_encoder(garbage, mask).global_latent, conv_encoder(image, mask).global_latent)


def test_conv_encoder_sees_observed_values(conv_encoder):
    mask = torch.rand(1, 1, 16, 16) < 0.3
    with torch.no_grad():
        latent = conv_encoder(torch.rand(1, 3, 16, 16), mask).global_latent
        assert not torch.allclose(latent, conv_encoder(-torch.ones(1, 3, 16, 16), mask).global_latent)


def test_set_encoder_shape_and_masked_garbage_points_change_nothing(set_encoder):
    coords, values = torch.rand(2, 10, 2) * 2 - 1, torch.rand(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.bool)
    latent = set_encoder.pool(coords, values, mask)
    assert latent.shape == (2, LATENT_DIM)
    padded = set_encoder.pool(
        torch.cat([coords, torch.randn(2, 7, 2) * 50], dim=1),
        torch.cat([values, torch.randn(2, 7, 3) * 50], dim=1),
        torch.cat([mask, torch.zeros(2, 7, dtype=torch.bool)], dim=1),
    )
    torch.testing.assert_close(padded, latent)


def test_set_encoder_pools_a_mean_not_a_sum(set_encoder):
    coords, values = torch.rand(1, 6, 2), torch.rand(1, 6, 3)
    mask = torch.ones(1, 6, dtype=torch.bool)
    twice = set_encoder.pool(coords.repeat(1, 2, 1), values.repeat(1, 2, 1), mask.repeat(1, 2))
    torch.testing.assert_close(twice, set_encoder.pool(coords, values, mask))


def test_set_encoder_is_permutation_invariant(set_encoder):
    coords, values = torch.rand(1, 20, 2), torch.rand(1, 20, 3)
    mask = torch.rand(1, 20) < 0.5
    order = torch.randperm(20)
    shuffled = set_encoder.pool(coords[:, order], values[:, order], mask[:, order])
    torch.testing.assert_close(shuffled, set_encoder.pool(coords, values, mask))
    assert not torch.allclose(set_encoder.pool(coords, values, ~mask), shuffled)  # the mask selects the points


@pytest.mark.parametrize(
    ("coords_shape", "values_shape", "mask_shape"),
    [((2, 10, 2), (2, 9, 3), (2, 10)), ((2, 10, 2), (2, 10, 3), (2, 9)), ((2, 10, 2), (1, 10, 3), (2, 10))],
)
def test_set_encoder_rejects_mismatched_shapes(set_encoder, coords_shape, values_shape, mask_shape):
    with pytest.raises(ValueError, match=r"must share \(B, N\)"):
        set_encoder.pool(torch.zeros(coords_shape), torch.zeros(values_shape), torch.ones(mask_shape, dtype=torch.bool))


def test_pull_push_fill_is_the_observed_mean_where_a_cell_is_covered_and_defined_everywhere():
    image = torch.rand(1, 3, 8, 8) * 2 - 1
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., 1, 2] = mask[..., 6, 5] = True
    levels = pull_push_fill(image, mask, levels=4)  # 8x8, 4x4, 2x2, 1x1 cells
    assert [tuple(level.shape) for level in levels] == [(1, 4, 8, 8)] * 4
    coarsest = levels[0]  # one 8x8 cell: the mean of both observed pixels everywhere, covered at 2/64
    expected = (image[..., 1, 2] + image[..., 6, 5]) / 2
    torch.testing.assert_close(coarsest[:, :3], expected[..., None, None].expand(1, 3, 8, 8))
    torch.testing.assert_close(coarsest[:, 3], torch.full((1, 8, 8), 2 / 64))
    assert all(torch.isfinite(level).all() for level in levels)
    finest = levels[-1]  # the observed pixels themselves, coverage 1 there
    torch.testing.assert_close(finest[0, :3, 1, 2], image[0, :, 1, 2])
    torch.testing.assert_close(finest[0, :3, 6, 5], image[0, :, 6, 5])
    assert finest[0, 3, 1, 2] == 1 and finest[0, 3, 0, 0] == 0


def test_pull_push_fill_of_a_constant_image_is_that_constant_at_every_level():
    image = torch.full((2, 3, 16, 12), 0.3)
    mask = torch.rand(2, 1, 16, 12, generator=torch.Generator().manual_seed(0)) < 0.05
    mask[:, :, 0, 0] = True
    for level in pull_push_fill(image, mask, levels=4):
        torch.testing.assert_close(level[:, :3], torch.full((2, 3, 16, 12), 0.3))


@pytest.mark.parametrize(("height", "width"), [(32, 32), (20, 12), (7, 5)])
def test_unet_encoder_gives_a_global_latent_and_a_local_grid_at_any_size(height, width):
    torch.manual_seed(0)
    encoder = UNetEncoder(channels=3, latent_dim=LATENT_DIM, local_features=6, widths=(8, 16, 16), fill_levels=3)
    image = torch.rand(2, 3, height, width) * 2 - 1
    latent, grid = encoder(image, torch.rand(2, 1, height, width) < 0.5)
    assert latent.shape == (2, LATENT_DIM)
    assert grid.shape == (2, 6, height, width)
    assert torch.isfinite(grid).all()


def test_unet_encoder_ignores_unobserved_pixels_even_nan():
    torch.manual_seed(0)
    encoder = UNetEncoder(channels=3, latent_dim=LATENT_DIM, local_features=6, widths=(8, 16), fill_levels=2)
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.rand(2, 1, 16, 16) < 0.3
    with torch.no_grad():
        expected = encoder(image, mask)
        for actual, wanted in zip(encoder(torch.where(mask, image, float("nan")), mask), expected):
            torch.testing.assert_close(actual, wanted)


def test_set_encoder_takes_an_image_and_mask_and_pools_its_observed_pixels(set_encoder):
    image, mask = torch.rand(2, 3, 4, 5) * 2 - 1, torch.rand(2, 1, 4, 5) < 0.5
    latent, grid = set_encoder(torch.where(mask, image, float("nan")), mask)
    assert grid is None
    for index in range(2):
        observed = mask[index].flatten()
        points = (cell_centres((4, 5))[observed], image[index].flatten(1).T[observed])
        expected = set_encoder.pool(*(t[None] for t in points), torch.ones(1, int(observed.sum()), dtype=torch.bool))
        torch.testing.assert_close(latent[index], expected[0])


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 1, 1), (2, 2, 8, 8)])
def test_doubling_by_slices_is_bilinear_upsampling_values_and_gradients(shape):
    features = torch.randn(shape, requires_grad=True)
    size = (2 * shape[-2], 2 * shape[-1])
    sliced = doubled(doubled(features, dim=-2), dim=-1)
    expected = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(sliced, expected)
    upstream = torch.randn(sliced.shape)
    (gradient,) = torch.autograd.grad(sliced, features, upstream)
    (expected_gradient,) = torch.autograd.grad(expected, features, upstream)
    torch.testing.assert_close(gradient, expected_gradient)


def test_upsampling_on_the_cpu_is_interpolate_bit_for_bit():
    """CPU runs keep their exact numbers: the sliced path is CUDA's, where interpolate's backward is slow."""
    features = torch.randn(2, 3, 4, 4)
    for size in [(8, 8), (7, 8)]:
        expected = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        assert torch.equal(upsample(features, size=size), expected)

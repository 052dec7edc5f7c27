import pytest
import torch

from hypersiren.across.baseline_fill import classical_fill, mean_image_fill


def linear_ramp(height=8, width=8):
    rows = torch.linspace(-1, 1, height)[:, None].expand(height, width)
    cols = torch.linspace(-1, 1, width)[None, :].expand(height, width)
    return torch.stack([0.5 * rows + 0.3 * cols, -0.2 * rows, 0.1 * cols]).unsqueeze(0)  # (1, 3, H, W), affine


@pytest.fixture
def scattered_mask():
    mask = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3
    mask[..., 0, 0] = mask[..., 0, -1] = mask[..., -1, 0] = mask[..., -1, -1] = True  # the hull is the whole image
    return mask


@pytest.mark.parametrize("method", ["nearest", "linear", "biharmonic"])
def test_classical_fills_keep_observed_pixels_and_fill_every_missing_one(method, scattered_mask):
    image = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = scattered_mask.expand(2, -1, -1, -1)
    filled = classical_fill(method, torch.where(mask, image, float("nan")), mask)
    assert filled.shape == image.shape and torch.isfinite(filled).all()
    torch.testing.assert_close(filled[mask.expand_as(image)], image[mask.expand_as(image)])


def test_linear_fill_reproduces_an_affine_image(scattered_mask):
    image = linear_ramp()
    torch.testing.assert_close(classical_fill("linear", image, scattered_mask), image, atol=1e-5, rtol=0)


def test_biharmonic_fill_beats_nearest_on_a_smooth_image(scattered_mask):
    image = linear_ramp().sin()
    errors = {m: (classical_fill(m, image, scattered_mask) - image).abs().mean() for m in ("nearest", "biharmonic")}
    assert errors["biharmonic"] < 0.5 * errors["nearest"]


def test_nearest_fill_takes_the_closest_observed_pixel():
    image = torch.zeros(1, 1, 1, 7)
    image[..., 0], image[..., 6] = -1.0, 1.0
    mask = torch.zeros(1, 1, 1, 7, dtype=torch.bool)
    mask[..., 0] = mask[..., 6] = True
    filled = classical_fill("nearest", image, mask)
    assert filled[0, 0, 0, :3].tolist() == [-1.0] * 3 and filled[0, 0, 0, 4:].tolist() == [1.0] * 3


def test_linear_fill_falls_back_to_nearest_for_collinear_context():
    image = linear_ramp()
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., 2, :] = True  # one row: no triangle
    filled = classical_fill("linear", image, mask)
    torch.testing.assert_close(filled, classical_fill("nearest", image, mask))


def test_fully_observed_images_are_returned_unchanged():
    image = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(classical_fill("biharmonic", image, torch.ones(1, 1, 4, 4, dtype=torch.bool)), image)


def test_mean_image_fill_keeps_observed_pixels():
    image, mean = torch.rand(2, 3, 4, 4), torch.zeros(3, 4, 4)
    mask = torch.rand(2, 1, 4, 4) < 0.5
    torch.testing.assert_close(mean_image_fill(mean, image, mask), torch.where(mask, image, 0.0))


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown classical fill 'cubic'"):
        classical_fill("cubic", torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4, dtype=torch.bool))

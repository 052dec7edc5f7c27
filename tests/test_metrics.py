import math

import pytest
import torch

from hypersiren.core.metrics import mse, psnr


def offset_images(offsets, shape=(3, 4, 5)):
    """Targets at 0.5 and predictions off by a known constant per image."""
    target = torch.full((len(offsets), *shape), 0.5)
    prediction = target + torch.tensor(offsets).view(-1, 1, 1, 1)
    return prediction, target


def test_mse_per_image():
    prediction, target = offset_images([0.1, -0.3, 0.0])
    torch.testing.assert_close(mse(prediction, target), torch.tensor([0.01, 0.09, 0.0]))


def test_mse_of_a_single_wrong_pixel_is_averaged_over_the_image():
    target = torch.zeros(1, 2, 5, 5)
    prediction = target.clone()
    prediction[0, 1, 2, 3] = 1.0
    torch.testing.assert_close(mse(prediction, target), torch.tensor([1 / 50]))


def test_psnr_per_image_in_db():
    prediction, target = offset_images([0.1, 0.01, -0.3])
    expected = torch.tensor([20.0, 40.0, 10 * math.log10(1 / 0.09)])
    torch.testing.assert_close(psnr(prediction, target), expected, rtol=0, atol=1e-3)


def test_psnr_is_per_image_not_of_the_pooled_mse():
    prediction, target = offset_images([0.1, 0.01])
    per_image = psnr(prediction, target)
    assert per_image.shape == (2,)
    assert per_image.mean().item() == pytest.approx(30.0, abs=1e-3)  # not 10 log10(1 / 0.00505) = 22.97


def test_psnr_of_identical_images_is_capped_at_100_db():
    image = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(psnr(image, image.clone()), torch.tensor([100.0, 100.0]))
    torch.testing.assert_close(psnr(255 * image, 255 * image, max_value=255.0), torch.tensor([100.0, 100.0]))


def test_psnr_scales_with_max_value():
    prediction, target = offset_images([0.1, 0.01])
    torch.testing.assert_close(psnr(255 * prediction, 255 * target, max_value=255.0), psnr(prediction, target))


@pytest.mark.parametrize("metric", [mse, psnr])
def test_shape_mismatch_raises(metric):
    with pytest.raises(ValueError, match=r"prediction \(2, 3, 4, 4\) and target \(2, 3, 4, 5\) differ in shape"):
        metric(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5))


def test_psnr_where_scores_only_the_chosen_pixels():
    target = torch.zeros(2, 3, 2, 2)
    prediction = target.clone()
    prediction[:, :, 0, 0] = 0.1  # the only error, at one pixel
    where = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    where[:, :, 0, :] = True  # that pixel and an exact one
    torch.testing.assert_close(mse(prediction, target, where), torch.full((2,), 0.01 / 2))
    torch.testing.assert_close(psnr(prediction, target, where=where), torch.full((2,), 10 * math.log10(2 / 0.01)))
    torch.testing.assert_close(psnr(prediction, target), torch.full((2,), 10 * math.log10(4 / 0.01)))

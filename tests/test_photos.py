import pytest
import torch
import torch.nn.functional as F

from hypersiren.core.metrics import psnr
from hypersiren.single.photos import load_photo


def test_camera_is_a_grayscale_uint8_image():
    camera = load_photo("camera")
    assert camera.shape == (1, 512, 512) and camera.dtype == torch.uint8
    assert camera.float().std() > 40  # a real photograph, not a blank


def test_astronaut_in_colour_and_in_gray():
    colour = load_photo("astronaut", size=64, grayscale=False)
    gray = load_photo("astronaut", size=64)
    assert colour.shape == (3, 64, 64) and gray.shape == (1, 64, 64)
    luma = torch.einsum("chw,c->hw", colour.float(), torch.tensor([0.2125, 0.7154, 0.0721]))
    assert (luma - gray[0].float()).abs().max() <= 2  # same luma, up to rounding of the resized channels


def test_downsampling_is_antialiased():
    # An antialiased resize by 8 is close to the 8x8 box average; point sampling is not.
    original = load_photo("camera").float().unsqueeze(0) / 255
    box_average = F.avg_pool2d(original, 8)
    resized = load_photo("camera", size=64).float().unsqueeze(0) / 255
    point_sampled = original[..., 4::8, 4::8]
    assert psnr(resized, box_average) > 30
    assert psnr(point_sampled, box_average) < psnr(resized, box_average) - 5


def test_unknown_photo_is_refused():
    with pytest.raises(ValueError, match="no photo"):
        load_photo("not_a_photo")

"""A user's photo read as the model takes it, and completions that keep the user's own pixels at any size."""

import numpy as np
import pytest
import torch
from PIL import Image

from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.across.user_images import complete_photo, keep_observed, observed_at, read_photo
from hypersiren.core.pixels import to_model_space


def test_read_photo_is_the_centre_square_in_model_space(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)  # wider than tall
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    photo = read_photo(tmp_path / "photo.png", size=40)
    assert photo.shape == (1, 3, 40, 40)
    assert torch.equal(photo[0], to_model_space(torch.from_numpy(pixels[:, 10:50]).permute(2, 0, 1)))
    assert read_photo(tmp_path / "photo.png", size=8).shape == (1, 3, 8, 8)


def test_at_the_models_size_the_observed_pixels_are_the_photos():
    completion, photo = -torch.ones(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    mask = torch.rand(2, 1, 4, 4) < 0.5
    assert torch.equal(keep_observed(completion, photo, mask), torch.where(mask, photo, completion))


@pytest.mark.parametrize("side", [8, 12])  # twice the model's size, and a ratio that is not whole
def test_above_the_models_size_each_observed_pixels_area_is_the_photos(side):
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, 1, 2] = True  # one observed model pixel: rows [1/4, 2/4), columns [2/4, 3/4) of the image
    completion, photo = -torch.ones(1, 3, side, side), torch.rand(1, 3, side, side)
    kept = keep_observed(completion, photo, mask)
    area = observed_at(mask, (side, side))[0, 0]
    rows, cols = area.nonzero().unbind(dim=1)
    assert (rows.float() + 0.5).div(side).ge(0.25).all() and (rows.float() + 0.5).div(side).lt(0.5).all()
    assert (cols.float() + 0.5).div(side).ge(0.5).all() and (cols.float() + 0.5).div(side).lt(0.75).all()
    assert area.sum() == (side // 4) ** 2
    assert torch.equal(kept[:, :, area], photo[:, :, area]) and (kept[:, :, ~area] == -1).all()


def test_a_photo_of_another_size_is_refused():
    with pytest.raises(ValueError, match="must have the completion's shape"):
        keep_observed(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4, dtype=torch.bool))


def test_read_photo_decodes_like_the_datasets(tmp_path):
    Image.fromarray(np.full((9, 9), 200, dtype=np.uint8)).save(tmp_path / "gray.png")  # grayscale: expanded to RGB
    expected = to_model_space(square_resize(decode_image(tmp_path / "gray.png"), 3))
    assert torch.equal(read_photo(tmp_path / "gray.png", size=3)[0], expected)


def test_both_completions_keep_the_photos_pixels_at_the_output_size(tiny_model_config):
    torch.manual_seed(0)
    model = HyperSiren(tiny_model_config()).eval()
    photo = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 50, 60), dtype=np.uint8))
    mask = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)) < 0.3
    completion = complete_photo(model, photo, mask, side=64)
    assert completion.original.shape == completion.hypersiren.shape == completion.biharmonic.shape == (1, 3, 64, 64)
    assert torch.equal(completion.original, read_photo_of(photo, 64))
    kept = completion.observed.expand(-1, 3, -1, -1)
    assert torch.equal(completion.hypersiren[kept], completion.original[kept])
    assert torch.equal(completion.biharmonic[kept], completion.original[kept])
    assert not torch.equal(completion.hypersiren[~kept], completion.original[~kept])


def read_photo_of(photo: torch.Tensor, size: int) -> torch.Tensor:
    return to_model_space(square_resize(photo, size))[None]

"""A user's photo completed at its own size: every observed pixel read by the model, and kept exactly."""

import numpy as np
import pytest
import torch
from PIL import Image

from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.across.user_images import (
    DETAIL_FILE,
    DetailWeights,
    complete_at_size,
    complete_photo,
    correct_at_size,
    fit_detail_weights,
    model_view,
    observed_per_cell,
    read_photo,
    scores,
    scores_line,
)
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import ConfigError


def test_read_photo_is_the_centre_square_in_model_space(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)  # wider than tall
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    photo = read_photo(tmp_path / "photo.png", size=40)
    assert photo.shape == (1, 3, 40, 40)
    assert torch.equal(photo[0], to_model_space(torch.from_numpy(pixels[:, 10:50]).permute(2, 0, 1)))
    assert read_photo(tmp_path / "photo.png", size=8).shape == (1, 3, 8, 8)


def test_read_photo_decodes_like_the_datasets(tmp_path):
    Image.fromarray(np.full((9, 9), 200, dtype=np.uint8)).save(tmp_path / "gray.png")  # grayscale: expanded to RGB
    expected = to_model_space(square_resize(decode_image(tmp_path / "gray.png"), 3))
    assert torch.equal(read_photo(tmp_path / "gray.png", size=3)[0], expected)


def test_the_model_view_is_each_cells_mean_of_its_observed_pixels():
    photo = torch.rand(1, 3, 8, 8) * 2 - 1
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = True  # two of cell (0, 0)'s four pixels
    mask[0, 0, 6, 5] = True  # one of cell (3, 2)'s
    image, seen = model_view(photo, mask, size=4)
    assert seen.shape == (1, 1, 4, 4) and seen.sum() == 2 and seen[0, 0, 0, 0] and seen[0, 0, 3, 2]
    assert torch.allclose(image[0, :, 0, 0], (photo[0, :, 0, 0] + photo[0, :, 1, 1]) / 2)
    assert torch.allclose(image[0, :, 3, 2], photo[0, :, 6, 5])
    assert (image[~seen.expand(-1, 3, -1, -1)] == 0).all()  # unobserved cells hold no photo value


def test_at_the_models_own_size_the_view_is_the_photo_and_its_mask():
    photo, mask = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) < 0.3
    image, seen = model_view(photo, mask, size=8)
    assert torch.equal(seen, mask) and torch.allclose(image, torch.where(mask, photo, 0.0))


def test_the_correction_keeps_observed_pixels_and_removes_an_error_the_observed_ones_show():
    photo = torch.rand(1, 3, 24, 24) * 1.6 - 0.8
    mask = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0)) < 0.1
    corrected = correct_at_size(photo - 0.15, photo, mask)  # a rendering off by a constant everywhere
    assert torch.equal(corrected[mask.expand(-1, 3, -1, -1)], photo[mask.expand(-1, 3, -1, -1)])
    assert torch.allclose(corrected, photo, atol=1e-4)  # a constant error seen at the observed pixels is gone
    with pytest.raises(ValueError, match="must be of one size"):
        correct_at_size(photo[..., :12, :12], photo, mask)


@pytest.mark.parametrize("side", [32, 64, 48])  # the model's own size, twice it, a ratio that is not whole
def test_a_photo_is_completed_at_its_output_size_with_its_observed_pixels_its_own(tiny_model_config, side):
    torch.manual_seed(0)
    model = HyperSiren(tiny_model_config()).eval()
    photo = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 50, 60), dtype=np.uint8))
    mask = torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(0)) < 0.3
    completion = complete_photo(model, photo, mask, model_side=32)
    assert completion.original.shape == completion.hypersiren.shape == completion.biharmonic.shape == (1, 3, side, side)
    assert torch.equal(completion.original, to_model_space(square_resize(photo, side))[None])
    assert completion.model_side == 32 and torch.equal(completion.observed, mask)
    kept = mask.expand(-1, 3, -1, -1)
    assert torch.equal(completion.hypersiren[kept], completion.original[kept])
    assert torch.equal(completion.biharmonic[kept], completion.original[kept])
    assert not torch.equal(completion.hypersiren[~kept], completion.original[~kept])
    if side == 32:  # the model read every pixel exactly: its own rendering, observed pixels pasted
        assert torch.equal(completion.hypersiren, torch.where(mask, completion.original, completion.rendered))
    else:  # above it, corrected: the missing pixels move by their observed neighbours' error
        assert not torch.equal(completion.hypersiren[~kept], completion.rendered[~kept])


def test_batched_completion_is_each_photos_own(tiny_model_config):
    torch.manual_seed(0)
    model = HyperSiren(tiny_model_config()).eval()
    photos = torch.rand(2, 3, 48, 48) * 2 - 1
    masks = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(1)) < 0.2
    both = complete_at_size(model, photos, masks, model_side=32)
    second = complete_at_size(model, photos[1:], masks[1:], model_side=32)
    assert torch.allclose(both.hypersiren[1:], second.hypersiren, atol=1e-5)


def test_an_output_above_the_largest_side_is_refused(tiny_model_config):
    model = HyperSiren(tiny_model_config()).eval()
    side = MAX_PHOTO_SIDE + 16
    with pytest.raises(ValueError, match=f"at {MAX_PHOTO_SIDE}x{MAX_PHOTO_SIDE} at most"):
        complete_photo(
            model, torch.zeros(3, 8, 8, dtype=torch.uint8), torch.ones(1, 1, side, side, dtype=torch.bool), 32
        )


def test_scores_are_each_completions_psnr_against_the_photo_at_the_output_size(tiny_model_config):
    model = HyperSiren(tiny_model_config()).eval()
    photo = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (3, 40, 40), dtype=np.uint8))
    completion = complete_photo(model, photo, torch.rand(1, 1, 40, 40) < 0.2, model_side=32)
    perfect = scores(completion._replace(hypersiren=completion.original))
    assert set(perfect) == {"HyperSiren", "biharmonic"} and perfect["HyperSiren"] == pytest.approx(100.0)
    error = (to_unit_range(completion.biharmonic) - to_unit_range(completion.original)).square().mean()
    assert perfect["biharmonic"] == pytest.approx(float(-10 * torch.log10(error)), abs=1e-3)
    assert scores_line(completion).startswith("PSNR against your photo: HyperSiren ")


@pytest.mark.filterwarnings("error")  # a density of 0 (nothing observed) is held, not a log of 0
def test_detail_weights_are_linear_in_log_density_and_held_beyond():
    detail = DetailWeights(densities=(0.1, 1.0, 10.0), weights=(1.0, 0.5, 0.0))
    keep = detail(torch.tensor([0.0, 0.01, 0.1, 10**-0.5, 1.0, 10.0, 100.0]))
    assert torch.allclose(keep, torch.tensor([1.0, 1.0, 1.0, 0.75, 0.5, 0.0, 0.0]))
    mask = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    mask[0, :, ::2, ::2] = True  # a quarter of the pixels: one per 2x2 cell at a model side of 32
    assert torch.allclose(observed_per_cell(mask, model_side=32), torch.tensor([1.0, 0.0]))


def test_detail_weights_are_saved_and_a_bad_file_is_one_clear_error(tmp_path):
    assert DetailWeights.of_run(tmp_path) is None  # a run without them: all of the model's detail
    detail = DetailWeights(densities=(0.04, 1.6), weights=(1.0, 0.2))
    detail.save(tmp_path)
    assert DetailWeights.of_run(tmp_path) == detail
    for bad in ("{not json", '{"densities": [1.0, 0.5], "weights": [1, 1]}', '{"densities": [1.0], "weights": [2]}'):
        (tmp_path / DETAIL_FILE).write_text(bad)
        with pytest.raises(ConfigError, match="eval/fit_detail.py"):
            DetailWeights.of_run(tmp_path)


def test_the_detail_weight_blends_the_corrected_rendering_with_biharmonic_above_the_models_size(tiny_model_config):
    torch.manual_seed(0)
    model = HyperSiren(tiny_model_config()).eval()
    photos = torch.rand(2, 3, 48, 48) * 2 - 1
    masks = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(1)) < 0.2
    plain = complete_at_size(model, photos, masks, model_side=32)
    assert torch.equal(plain.hypersiren, plain.corrected)  # without weights all of the detail is kept
    none = complete_at_size(model, photos, masks, model_side=32, detail=DetailWeights((1.0,), (0.0,)))
    assert torch.allclose(none.hypersiren, plain.biharmonic)
    half = complete_at_size(model, photos, masks, model_side=32, detail=DetailWeights((1.0,), (0.5,)))
    assert torch.allclose(half.hypersiren, (plain.corrected + plain.biharmonic) / 2)
    kept = masks.expand(-1, 3, -1, -1)
    assert torch.equal(half.hypersiren[kept], photos[kept])
    photos, masks = photos[..., :32, :32], masks[..., :32, :32]  # at the model's own size nothing is blended
    own = complete_at_size(model, photos, masks, model_side=32, detail=DetailWeights((1.0,), (0.0,)))
    assert torch.equal(own.hypersiren, torch.where(masks, photos, own.rendered))


def test_fitted_detail_weights_are_the_best_blend_on_the_training_images(tiny_model_config):
    torch.manual_seed(0)
    model = HyperSiren(tiny_model_config()).eval()
    rows = torch.linspace(0, 255, 48).round().to(torch.uint8)
    smooth = rows[None, None, :, None].expand(3, 3, 48, 48).clone()  # ramps: biharmonic fills them exactly
    detail, measured = fit_detail_weights(model, {48: smooth}, shares=(0.05, 0.3), model_side=32)
    assert [row["observed"] for row in measured] == [115, 691]
    assert detail.densities == pytest.approx((115 / 32**2, 691 / 32**2), abs=1e-6)
    for row in measured:
        assert row["psnr"] >= max(row["psnr_all_detail"], row["psnr_biharmonic"])
    assert detail.weights == (0.0, 0.0)  # an untrained model's detail only hurts a ramp
    with pytest.raises(ValueError, match="above the model's 32"):
        fit_detail_weights(model, {32: smooth[..., :32, :32]}, shares=(0.1,), model_side=32)

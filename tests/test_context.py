import pytest
import torch

from hypersiren.across.context import (
    first_half_mask,
    protocol_settings,
    random_context_mask,
    training_context_mask,
)


@pytest.mark.parametrize("num_context", [10, 100, 1000])
def test_random_context_mask_observes_exactly_k_pixels_per_image(num_context):
    mask = random_context_mask(4, (32, 40), num_context)
    assert mask.shape == (4, 1, 32, 40) and mask.dtype == torch.bool
    assert mask.flatten(1).sum(dim=1).tolist() == [num_context] * 4


def test_random_context_mask_none_observes_everything():
    mask = random_context_mask(2, (5, 7), None)
    assert mask.shape == (2, 1, 5, 7) and mask.dtype == torch.bool
    assert mask.all()


def test_random_context_masks_differ_across_the_batch():
    mask = random_context_mask(4, (32, 32), 100)
    for index in range(1, 4):
        assert not torch.equal(mask[0], mask[index])


def test_random_context_mask_is_reproducible_with_a_seeded_generator():
    def sample(seed):
        return random_context_mask(3, (16, 16), 20, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(0), sample(0))
    assert not torch.equal(sample(0), sample(1))


def test_random_context_mask_picks_pixels_uniformly():
    frequency = random_context_mask(4000, (4, 4), 4, generator=torch.Generator().manual_seed(0)).float().mean(dim=0)
    torch.testing.assert_close(frequency, torch.full_like(frequency, 4 / 16), atol=0.03, rtol=0)


def test_training_context_mask_counts_lie_in_and_cover_the_range():
    mask = training_context_mask(400, (8, 8), 3, 7, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (400, 1, 8, 8)
    counts = mask.flatten(1).sum(dim=1)
    assert set(counts.tolist()) == {3, 4, 5, 6, 7}


def test_training_context_mask_with_equal_bounds_is_exact():
    counts = training_context_mask(5, (8, 8), 9, 9).flatten(1).sum(dim=1)
    assert counts.tolist() == [9] * 5


@pytest.mark.parametrize(("height", "observed_rows"), [(4, 2), (5, 3), (1, 1)])
def test_top_half_mask_observes_the_top_rows(height, observed_rows):
    mask = first_half_mask(2, (height, 3))
    assert mask.shape == (2, 1, height, 3) and mask.dtype == torch.bool
    assert mask[:, :, :observed_rows].all()
    assert not mask[:, :, observed_rows:].any()


@pytest.mark.parametrize("num_context", [0, -1, 65])
def test_random_context_mask_rejects_invalid_k(num_context):
    with pytest.raises(ValueError, match=r"num_context must be in \[1, 64\] for signals of 8x8 points"):
        random_context_mask(2, (8, 8), num_context)


@pytest.mark.parametrize(("min_context", "max_context"), [(0, 5), (6, 5), (1, 65)])
def test_training_context_mask_rejects_invalid_range(min_context, max_context):
    with pytest.raises(ValueError, match=r"need 1 <= min_context <= max_context <= 64"):
        training_context_mask(2, (8, 8), min_context, max_context)


def test_log_uniform_context_trains_small_and_large_contexts_alike():
    counts = training_context_mask(
        4000, (32, 32), 10, 1024, log_uniform=True, generator=torch.Generator().manual_seed(0)
    )
    counts = counts.flatten(1).sum(dim=1).float()
    assert counts.min() >= 10 and counts.max() <= 1024
    below_100 = (counts < 100).float().mean()  # log-uniform: log(10)/log(102.4) ~ 0.50; uniform would give ~0.09
    assert 0.45 < below_100 < 0.55


def test_top_half_fraction_replaces_that_share_of_masks_with_the_top_half():
    mask = training_context_mask(1000, (8, 8), 1, 3, top_half_fraction=0.3, generator=torch.Generator().manual_seed(0))
    is_top_half = (mask == first_half_mask(1, (8, 8))).flatten(1).all(dim=1)
    assert 0.25 < is_top_half.float().mean() < 0.35
    assert (mask[~is_top_half].flatten(1).sum(dim=1) <= 3).all()


@pytest.mark.parametrize(
    "size, counts",
    [(32, ("10", "100", "1000")), (64, ("41", "410", "4014")), (16, ("3", "26", "251")), (8, ("1", "6", "63"))],
)
def test_the_protocol_is_the_papers_counts_at_32_and_the_same_densities_elsewhere(size, counts):
    assert protocol_settings((size, size)) == (*counts, "top_half", "full")


def test_the_protocol_of_a_tiny_image_keeps_a_pixel_missing_and_names_each_count_once():
    assert protocol_settings((2, 2)) == ("1", "top_half", "full")  # 1% and 10% of 4 pixels are both 1; 98% is all 4

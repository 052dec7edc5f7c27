"""The held-out protocol's library side: the ablation's rows and the arbitrary-scale comparison."""

import pytest
import torch
import torch.nn.functional as F

from hypersiren.across.context import protocol_settings
from hypersiren.across.evaluation import (
    evaluate_inpainting,
    evaluate_scales,
    inpainting_table,
    require_informative,
    scales_table,
    seeded_masks,
)
from hypersiren.across.model import HyperSiren
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import ConfigError


@pytest.fixture(scope="module")
def models(tiny_model_config):
    torch.manual_seed(0)
    ablation = HyperSiren(tiny_model_config(decoder="pixel")).eval()
    torch.nn.init.normal_(ablation.decoder.correction[-1].weight, std=0.1)  # untrained, it renders the fill exactly
    return HyperSiren(tiny_model_config()).eval(), ablation


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(0)
    high = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=generator)
    low = F.interpolate(high.float(), size=(16, 16), mode="area").round().to(torch.uint8)
    return low, high


def test_the_ablation_is_scored_on_the_same_masks_only_when_given(models, images):
    model, ablation = models
    low, _ = images
    mean_image = to_model_space(low).mean(dim=0)
    alone = evaluate_inpainting(model, low, mean_image, settings=("10", "full"))
    beside = evaluate_inpainting(model, low, mean_image, settings=("10", "full"), ablation=ablation)
    assert "pixel_unet" not in alone["10"] and "Ablation" not in inpainting_table(alone)
    assert beside["10"]["hypersiren"] == alone["10"]["hypersiren"]  # the same masks
    assert beside["10"]["pixel_unet_pasted"]["psnr"] > beside["10"]["pixel_unet"]["psnr"]  # pasting is exact
    assert beside["full"]["pixel_unet_pasted"]["psnr"] is None and beside["full"]["pixel_unet"]["psnr"] > 0
    assert "| Ablation: same U-Net, pixel head, pasted |" in inpainting_table(beside)


def test_scales_score_each_method_against_the_true_larger_image(models, images):
    model, ablation = models
    low, high = images
    results = evaluate_scales(model, low, {2.0: high}, settings=("full", "10"), ablation=ablation)
    full = results["full"]["2"]
    truth = to_unit_range(to_model_space(high))
    image = to_model_space(low)
    mask = torch.ones_like(image[:, :1], dtype=torch.bool)
    rendered = model.inpaint(image, mask, size=(32, 32))
    assert full["hypersiren"] == pytest.approx(psnr(to_unit_range(rendered), truth).mean().item(), abs=1e-4)
    bicubic = F.interpolate(image, size=(32, 32), mode="bicubic", align_corners=False)
    assert full["bicubic"] == pytest.approx(psnr(to_unit_range(bicubic), truth).mean().item(), abs=1e-4)
    # with every pixel observed, the pasted completions are the input itself
    assert full["hypersiren_bicubic"] == pytest.approx(full["bicubic"]) == pytest.approx(full["pixel_unet_bicubic"])
    assert results["10"]["2"]["bicubic"] != full["bicubic"]  # from 10 pixels: bicubic of the biharmonic fill
    table = scales_table(results["full"], low_size=16, setting="full")
    assert "×2 (32²)" in table and "all pixels" in table


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_the_protocol_means_the_same_densities_at_every_size(models, size):
    model, _ = models
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    results = evaluate_inpainting(model, images, mean_image=None, batch_size=1)
    assert tuple(results) == protocol_settings((size, size))
    observed = {setting: seeded_masks(setting, 1, (size, size), seed=0).float().mean().item() for setting in results}
    densities = [observed[setting] for setting in results if setting.isdigit()]
    assert densities == sorted(densities) and len(densities) == 3  # 1%, 10%, 98%: three distinct tasks at 8x8 too
    if size >= 16:  # rounding aside, the densities themselves
        assert densities == pytest.approx([0.01, 0.1, 0.98], rel=0.2)
    assert all(v["psnr"] > 0 for by_method in results.values() for v in by_method.values() if v["psnr"] is not None)
    assert "full" in results and results["full"]["hypersiren_pasted"]["psnr"] is None


def test_flat_images_are_refused_rather_than_scored_a_perfect_100_db():
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    require_informative(images, source="photos")
    images[1] = 17  # one flat grey image: every fill is exact on it
    with pytest.raises(ConfigError, match=r"1 of the 3 images of photos are one flat colour \(first: image 1\)"):
        require_informative(images, source="photos")

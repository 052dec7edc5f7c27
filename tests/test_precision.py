"""eval/precision.py: its bf16 emulation is what a bf16 GEMM computes, and its fp32 row is the model."""

import pytest
import torch

from hypersiren.across import memory
from hypersiren.across.evaluation import evaluate_inpainting
from hypersiren.across.model import HyperSiren
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.render import LayerParams, render
from hypersiren.core.siren import SirenConfig, init_siren_params
from hypersiren.errors import MemoryLimitError


@pytest.fixture(scope="module")
def precision(load_program):
    return load_program("eval/precision.py")


@pytest.fixture
def model(tiny_model_config):
    torch.manual_seed(0)
    return HyperSiren(tiny_model_config(siren_hidden_features=16, siren_hidden_layers=2)).eval()


def test_fp32_is_the_models_own_inpainting(precision, model):
    image = torch.rand(3, 3, 8, 8) * 2 - 1
    mask = torch.rand(3, 1, 8, 8) < 0.5
    expected = model.inpaint(image, mask, raw=True, supersample=1)  # precision.py scores the raw point rendering
    torch.testing.assert_close(precision.inpaint_with(model, image, mask, precision.PRECISIONS["fp32"]), expected)
    for name in ("bf16_trunk", "bf16_hidden", "bf16_first", "bf16_sine"):
        assert not torch.equal(precision.inpaint_with(model, image, mask, precision.PRECISIONS[name]), expected), name


def test_full_bf16_emulation_matches_a_real_bf16_render(precision):
    config = SirenConfig(hidden_features=64, hidden_layers=2, out_features=3)
    params = init_siren_params(config, batch_size=2, generator=torch.Generator().manual_seed(0))
    coords = cell_centres((16, 16)).expand(2, -1, -1)
    fp32 = render(params, coords)
    real_bf16 = render([LayerParams(w.bfloat16(), b.bfloat16()) for w, b in params], coords.bfloat16()).float()
    emulated = precision.rounded_render(params, coords, 30.0, precision.PRECISIONS["bf16_sine"])
    emulation_error = (emulated - real_bf16).abs().mean()
    assert (fp32 - real_bf16).abs().mean() > 5 * emulation_error  # emulation is far closer to bf16 than fp32 is


def test_fp32_row_equals_the_evaluation_protocol(precision, model):
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    settings = ("10", "full")
    results = precision.evaluate_precisions(model, images, settings, seed=3, batch_size=4)
    protocol = evaluate_inpainting(model, images, torch.zeros(3, 8, 8), settings, seed=3)
    for setting in settings:
        assert results["psnr"]["fp32"][setting] == pytest.approx(protocol[setting]["hypersiren"]["psnr"], rel=1e-5)
        assert results["psnr_vs_fp32"]["fp32"][setting] == pytest.approx(100.0)  # identical to itself
        assert 20 < results["psnr_vs_fp32"]["bf16_sine"][setting] < 100  # bf16 changes the image, a little
    assert "| fp32 throughout | " in precision.precision_tables(results)


def test_a_batch_too_large_for_memory_is_refused_before_evaluating(precision, model, monkeypatch):
    images = torch.zeros(256, 3, 128, 128, dtype=torch.uint8)
    precision.require_precision_memory(model, images, device="cpu")  # the tiny model fits
    monkeypatch.setattr(memory, "physical_memory", lambda: 2**30)
    with pytest.raises(MemoryLimitError, match="rendering 128 images of 128x128 at once needs about"):
        precision.require_precision_memory(model, images, device="cpu")

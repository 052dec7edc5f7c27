"""Decoders behind one contract: the cell head (the ablation, model.decoder = "pixel": the same encoder, no
hypernetwork, no SIREN), sampling a grid of any dimension, and a new decoder as one class."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hypersiren.across.config import ModelConfig, RunConfig
from hypersiren.across.context import random_context_mask
from hypersiren.across.decoders import Decoded, sample_grid
from hypersiren.across.encoders import Latents
from hypersiren.across.model import HyperSiren
from hypersiren.across.objective import hypernetwork_loss
from hypersiren.core.coordinates import cell_centres
from hypersiren.errors import ConfigError

HEIGHT, WIDTH = 8, 6  # the size of conftest.py's batch
DEFAULT_PRESET = Path(__file__).resolve().parents[1] / "train" / "default.toml"


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = ModelConfig(latent_dim=16, encoder_widths=[8, 16], local_features=8, decoder="pixel")
    model = HyperSiren(config).eval()
    torch.nn.init.normal_(model.decoder.correction[-1].weight)  # a trained head's correction is not zero
    return model


def test_it_has_no_hypernetwork_or_siren(model):
    assert not hasattr(model.decoder, "hypernet") and not hasattr(model.decoder, "modulator")
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert names == {"encoder", "decoder"}


def test_an_untrained_head_renders_the_encoders_fill(batch):
    image, mask = batch
    model = HyperSiren(ModelConfig(latent_dim=16, encoder_widths=[8, 16], local_features=8, decoder="pixel"))
    local_grid = model.encode(image, mask).local_grid
    torch.testing.assert_close(model.inpaint(image, mask, raw=True), local_grid[:, -3:])


def test_forward_on_the_pixel_grid_is_the_head_and_trains(model, batch):
    image, mask = batch
    prediction = model(image, mask, cell_centres((HEIGHT, WIDTH)).expand(2, -1, -1))
    with torch.no_grad():
        head = model.decoder.cells(model.encode(image, mask).local_grid)
    torch.testing.assert_close(prediction.values, rearrange(head, "b c h w -> b (h w) c"))
    target = rearrange(image, "b c h w -> b (h w) c")
    loss, terms = hypernetwork_loss(prediction, target, observed=rearrange(mask, "b 1 h w -> b (h w)"))
    loss.backward()
    assert terms["weight_l2"] == 0 and model.decoder.correction[0].weight.grad.abs().sum() > 0


def test_inpaint_pastes_and_other_sizes_interpolate_the_cells_bilinearly(model, batch):
    image, mask = batch
    completed = model.inpaint(image, mask)
    raw = model.inpaint(image, mask, raw=True)
    with torch.no_grad():
        cells = model.decoder.cells(model.encode(image, mask).local_grid)
    torch.testing.assert_close(raw, cells)  # at the cell centres the cells' own values
    torch.testing.assert_close(completed, torch.where(mask, image, raw).clamp(-1, 1))
    large = model.inpaint(image, mask, size=(3 * HEIGHT, 2 * WIDTH))
    expected = F.interpolate(cells, size=(3 * HEIGHT, 2 * WIDTH), mode="bilinear", align_corners=False)
    torch.testing.assert_close(large, expected.clamp(-1, 1))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.decoder=pixel", "model.encoder=conv", "train.fine_points=0"], "needs model.encoder='unet'"),
        (["model.decoder=pixel", "train.fine_points=512"], "set --train.fine_points 0"),
    ],
)
def test_config_refuses_what_a_pixel_head_cannot_do(overrides, message, configured):
    with pytest.raises(ConfigError, match=message):
        configured(RunConfig.load(DEFAULT_PRESET), *overrides).validate()


def test_config_accepts_the_default_recipe_without_fine_points(configured):
    configured(RunConfig.load(DEFAULT_PRESET), "model.decoder=pixel", "train.fine_points=0").validate()


GRIDS = {1: (32,), 2: (12, 10), 3: (6, 8, 4)}


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_sample_grid_is_exact_at_cell_centres_and_multilinear_between(dims):
    grid = torch.randn(2, 3, *GRIDS[dims])
    centres = cell_centres(GRIDS[dims]).expand(2, -1, -1)
    torch.testing.assert_close(sample_grid(grid, centres), grid.flatten(2).mT)
    ramp = cell_centres(GRIDS[dims])[:, -1].view(1, 1, *GRIDS[dims])  # linear along the last axis
    inside = torch.rand(2, 50, dims) * 1.2 - 0.6  # within the outer centres: no border clamping
    torch.testing.assert_close(sample_grid(ramp.expand(2, -1, *GRIDS[dims]), inside)[..., 0], inside[..., -1])


class ConstantDecoder(nn.Module):
    """A new decoder is one class: the global latent's first ``C`` entries everywhere."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, latents: Latents, coords: Tensor) -> Decoded:
        value = latents.global_latent[:, None, : self.channels]  # (B, 1, C)
        return Decoded(value.expand(-1, coords.shape[1], -1), [])


def test_a_new_decoder_is_one_class_the_model_composes_without_a_branch():
    model = HyperSiren(ModelConfig(channels=1, dims=1, latent_dim=8, encoder_widths=[8, 16], local_features=8)).eval()
    model.decoder = ConstantDecoder(channels=1)
    signal, mask = torch.rand(2, 1, 16) * 2 - 1, random_context_mask(2, (16,), num_context=4)
    with torch.no_grad():
        latent = model.encode(signal, mask).global_latent
        raw = model.inpaint(signal, mask, raw=True, size=(40,))
    torch.testing.assert_close(raw, latent[:, :1, None].expand(-1, -1, 40))
    assert model(signal, mask, torch.zeros(2, 5, 1)).params == []

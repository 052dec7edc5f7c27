"""The local-latent model against the paper's global-only model, both trained briefly on real faces."""

import pytest
import torch

from hypersiren.across.config import DataConfig, ModelConfig
from hypersiren.across.data import ShuffledBatches, load_images, training_batch
from hypersiren.across.evaluation import evaluate_inpainting
from hypersiren.across.model import HyperSiren
from hypersiren.across.objective import hypernetwork_loss
from hypersiren.core.pixels import to_model_space

STEPS, BATCH = 150, 16
SMALL = dict(latent_dim=64, siren_hidden_features=64, siren_hidden_layers=2, hyper_hidden_features=64)


def train_briefly(config: ModelConfig, images: torch.Tensor, query_points: int = 0) -> HyperSiren:
    """``STEPS`` steps of the default recipe, contexts from 1% of the pixels to all of them."""
    torch.manual_seed(0)
    model = HyperSiren(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = ShuffledBatches(len(images), BATCH, seed=0)
    pixels = images.shape[-2] * images.shape[-1]
    for step in range(STEPS):
        batch = training_batch(
            images,
            batches,
            step,
            min_context=pixels // 100,
            max_context=pixels,
            log_uniform=True,
            top_half_fraction=0.2,
            query_points=query_points,
        )
        loss, _ = hypernetwork_loss(model(batch.image, batch.mask, batch.coords), batch.target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def held_out_results(celeba_root):
    data = DataConfig(dataset="celeba", root=str(celeba_root), image_size=32)
    train_images, held_out = load_images(data, "train", limit=1024), load_images(data, "val", limit=64)
    mean_image = to_model_space(train_images).mean(dim=0)
    results = {}
    for encoder, widths in (("unet", [16, 32, 48]), ("conv", [16, 32, 64])):
        model = train_briefly(
            ModelConfig(encoder=encoder, encoder_widths=widths, local_features=32, **SMALL), train_images
        )
        results[encoder] = evaluate_inpainting(model, held_out, mean_image, settings=("100", "1000"))
    return results


@pytest.mark.slow
def test_local_latents_beat_the_global_latent_by_5_db_at_1000_pixels(held_out_results):
    local, global_only = (held_out_results[e]["1000"]["hypersiren_pasted"]["psnr"] for e in ("unet", "conv"))
    assert local > global_only + 5.0, (local, global_only)


@pytest.mark.slow
def test_local_latents_beat_nearest_fill_at_100_pixels(held_out_results):
    scores = held_out_results["unet"]["100"]
    assert scores["hypersiren_pasted"]["psnr"] > scores["nearest"]["psnr"], scores


@pytest.mark.slow
def test_a_short_64x64_training_with_query_points_beats_nearest_fill_at_10_percent(celeba_root):
    data = DataConfig(dataset="celeba", root=str(celeba_root), image_size=64)
    train_images, held_out = load_images(data, "train", limit=1024), load_images(data, "val", limit=64)
    config = ModelConfig(encoder_widths=[8, 16, 32, 48], local_features=32, **SMALL)
    model = train_briefly(config, train_images, query_points=1024)  # a quarter of the pixels rendered per image
    scores = evaluate_inpainting(model, held_out, mean_image=None, settings=("410",))["410"]
    assert scores["hypersiren_pasted"]["psnr"] > scores["nearest"]["psnr"], scores

from pathlib import Path

import pytest

from hypersiren.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


def test_presets_load_and_paper_preset_matches_the_paper():
    paper = RunConfig.load(REPO / "train" / "paper.toml")
    assert (paper.model.siren_hidden_features, paper.model.siren_hidden_layers, paper.model.latent_dim) == (256, 3, 256)
    assert (paper.train.lr, paper.train.batch_size, paper.train.grad_clip) == (5e-5, 100, 1.0)
    assert (paper.train.min_context, paper.train.max_context) == (10, 200)
    assert (paper.train.latent_weight, paper.train.weight_weight) == (0.1, 100.0)
    assert paper.model.encoder == "conv"  # the paper's global latent only
    default = RunConfig.load(REPO / "train" / "default.toml")
    assert default.model.encoder == "unet" and default.train.max_context == 32 * 32  # trained on every context size


def test_overrides_are_typed_and_roundtrip(tmp_path):
    config = RunConfig().override(["train.lr=3e-4", "model.encoder_widths=[8,16]", "train.amp=false", "data.dataset=cifar10"])
    assert config.train.lr == 3e-4 and config.model.encoder_widths == [8, 16] and config.train.amp is False
    config.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == config


@pytest.mark.parametrize(
    "override, error, message",
    [
        ("train.lrr=1", KeyError, "unknown config key 'train.lrr'"),
        ("train.lr", ValueError, "section.field=value"),
        ("train.max_steps=ten", ValueError, "cannot set train.max_steps"),
        ("data.dataset=imagenet", ValueError, "cannot set data.dataset"),
        ("train.amp=maybe", ValueError, "cannot set train.amp"),
    ],
)
def test_bad_overrides_are_named(override, error, message):
    with pytest.raises(error, match=message):
        RunConfig().override([override])

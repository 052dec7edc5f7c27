import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hypersiren.across.config import MAX_PARAMETERS, ModelConfig, RunConfig, parameter_count, require_same_model
from hypersiren.across.data import dataset_root
from hypersiren.across.model import HyperSiren
from hypersiren.across.rules import model_problems
from hypersiren.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_presets_load_and_paper_preset_matches_the_paper():
    paper = RunConfig.load(REPO / "train" / "paper.toml")
    assert (paper.model.siren_hidden_features, paper.model.siren_hidden_layers, paper.model.latent_dim) == (256, 3, 256)
    assert (paper.train.lr, paper.train.batch_size, paper.train.grad_clip) == (5e-5, 100, 1.0)
    assert (paper.train.min_context, paper.train.max_context) == (10, 200)
    assert (paper.train.latent_weight, paper.train.params_weight) == (0.1, 100.0)
    assert paper.model.encoder == "conv"  # the paper's global latent only
    default = RunConfig.load(REPO / "train" / "default.toml")
    assert default.model.encoder == "unet" and default.train.max_context == 32 * 32  # trained on every context size


def test_options_are_typed_and_roundtrip(tmp_path, configured):
    config = configured(
        RunConfig(), "train.lr=3e-4", "model.encoder_widths=[8,16]", "train.amp=false", "data.dataset=cifar10"
    )
    assert config.train.lr == 3e-4 and config.model.encoder_widths == [8, 16] and config.train.amp is False
    config.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == config


def test_an_unknown_key_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'; valid keys: model.channels"):
        RunConfig.from_dict({"train": {"lrr": 1}})


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=0", r"train.batch_size=0 must be >= 1"),
        ("train.checkpoint_every=0", r"train.checkpoint_every=0 must be >= 1"),
        ("train.log_every=-5", r"train.log_every=-5 must be >= 1"),
        ("train.max_steps=0", r"train.max_steps=0 must be in \[1, 1000000000000\]"),
        ("train.max_context=2000", r"train.max_context <= 1024 .*got \[10, 2000\]: lower train.max_context"),
        ("train.min_context=1100", r"got \[1100, 1024\]: lower train.min_context"),
        ("train.min_context=0", r"train.min_context=0 must be >= 1"),
        ("train.lr=0", r"train.lr=0.0 must be a finite number > 0"),
        ("train.lr=nan", r"train.lr=nan must be a finite number > 0"),
        ("train.latent_weight=-1", r"train.latent_weight=-1.0 must be a finite number >= 0"),
        ("train.grad_clip=0", r"train.grad_clip=0.0 must be > 0"),
        ("model.omega=0", r"model.omega=0.0 must be a number in \(0, 10000\]"),
        ("model.siren_hidden_layers=-1", r"model.siren_hidden_layers=-1 must be in \[0, 64\]"),
        ("model.latent_dim=0", r"model.latent_dim=0 must be in \[1, 32768\]"),
        ("model.encoder_widths=[]", r"model.encoder_widths=\[\] must be a list of 1 to 10 widths"),
        # Each accepted before, then overflowed in C++ (a traceback), hung building 10^8 layers, or overflowed fp32.
        ("model.siren_hidden_features=100000000000", r"siren_hidden_features=100000000000 must be in \[1, 32768\]"),
        ("model.encoder_widths=[99999999999]", r"model.encoder_widths=\[99999999999\] must be a list of 1 to 10"),
        ("model.siren_hidden_layers=100000000", r"model.siren_hidden_layers=100000000 must be in \[0, 64\]"),
        ("model.omega=1e308", r"model.omega=1e\+308 must be a number in \(0, 10000\]"),
        ("train.max_steps=100000000000000000000000", r"train.max_steps=.* must be in \[1, 1000000000000\]"),
        ("data.image_size=4096", r"data.image_size=4096 must be in \[2, 1024\]"),
        ("data.image_size=1", r"data.image_size=1 must be in \[2, 1024\]"),  # its top half is all of it
        ("data.eval_split=validation", r"data.eval_split='validation' is not a celeba split: choose one of train, val"),
        ("train.seed=-1", r"train.seed=-1 must be in \[0, 4294967295\]"),
        ("train.seed=4294967296", r"train.seed=4294967296 must be in \[0, 4294967295\]"),
        ("train.fine_points=100000000", r"train.fine_points=100000000 exceeds the 4096 pixels of the 64x64 image"),
        ("data.train_limit=-1", r"data.train_limit=-1 must be >= 0"),
        ("model.hyper_hidden_features=30000", r"parameters .* more than the 1,073,741,824 allowed: lower model.hyper"),
    ],
)
def test_values_that_cannot_work_are_refused_in_one_line(override, message, configured):
    config = configured(RunConfig.load(REPO / "train" / "default.toml"), override)
    with pytest.raises(ConfigError, match=message) as error:
        config.validate()
    assert "\n" not in str(error.value)


def test_presets_and_the_default_config_are_valid():
    RunConfig().validate()
    for preset in ("default", "paper"):
        RunConfig.load(REPO / "train" / f"{preset}.toml").validate()


def test_every_problem_is_named_at_once():
    config = RunConfig().update({"train.batch_size": 0, "train.checkpoint_every": 0})
    with pytest.raises(ConfigError, match="train.batch_size=0 .*; train.checkpoint_every=0"):
        config.validate()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"train": {"batch_size": 3.5}}, "train.batch_size=3.5 must be an integer"),
        ({"train": {"amp": 1}}, "train.amp=1 must be true or false"),
        ({"model": {"encoder": 3}}, "model.encoder=3 must be one of 'unet', 'conv', 'set'"),
        ({"model": {"encoder_widths": [8, "16"]}}, "model.encoder_widths=.* must be"),
        ({"train": 5}, "must map sections"),
    ],
)
def test_saved_values_of_the_wrong_type_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(values).validate()


def test_parameter_count_is_the_built_models_without_allocating_it(tiny_model_config):
    small = tiny_model_config()
    assert parameter_count(small) == sum(parameter.numel() for parameter in HyperSiren(small).parameters())
    huge = ModelConfig(hyper_hidden_features=30000)  # ~6 GB of weights: counted on the meta device, not built
    assert parameter_count(huge) > MAX_PARAMETERS


def test_model_validation_reads_fields_by_name_and_tolerates_new_ones():
    @dataclass
    class FutureModelConfig(ModelConfig):
        latent_grid: list[int] = field(default_factory=lambda: [4, 4])
        dropout: float = 0.0

    assert model_problems(FutureModelConfig()) == []
    assert model_problems(FutureModelConfig(latent_dim=0)) == ["model.latent_dim=0 must be in [1, 32768]"]
    assert model_problems(FutureModelConfig(latent_grid=["4"])) == ["model.latent_grid=['4'] must be list[int]"]


def test_resume_refuses_a_model_change_and_accepts_training_changes():
    saved = RunConfig()
    require_same_model(saved, RunConfig().update({"train.lr": 1e-6, "train.grad_clip": 0.1, "train.max_steps": 9}))
    with pytest.raises(ConfigError, match=r"model.latent_dim 128 -> 64.*another --out"):
        require_same_model(saved, RunConfig().update({"model.latent_dim": 64}))


def test_save_validates_first_and_replaces_the_file_whole(tmp_path):
    path = tmp_path / "config.json"
    RunConfig().save(path)
    saved = path.read_text()
    with pytest.raises(ConfigError, match="train.batch_size=0"):
        RunConfig().update({"train.batch_size": 0}).save(path)
    assert path.read_text() == saved and [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert json.loads(saved)["train"]["batch_size"] == 32
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # readable as any file written here, not 0o600


def test_bad_preset_text_is_a_config_error(tmp_path):
    (tmp_path / "broken.toml").write_text("[train\nlr = ")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        RunConfig.load(tmp_path / "broken.toml")


def test_relative_roots_in_presets_are_taken_from_the_repository_not_the_working_directory(
    tmp_path, monkeypatch, configured
):
    monkeypatch.chdir(tmp_path)
    preset = RunConfig.load(REPO / "train" / "default.toml")
    assert preset.data.root == "../shared/data/celeba"  # the preset stays portable ...
    assert dataset_root(preset.data) == (REPO / ".." / "shared" / "data" / "celeba").resolve()  # ... and found here
    typed = configured(RunConfig(), "data.root=my_images")  # a command-line root is the shell's: from the cwd
    assert typed.data.root == str(tmp_path / "my_images")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.local_features=3", "model.local_features=3 must exceed model.channels=3"),
        ("train.top_half_fraction=1.5", "train.top_half_fraction=1.5 must be in"),
        ("train.fine_points=-1", "train.fine_points=-1 must be"),
    ],
)
def test_local_model_fields_are_validated(override, message, configured):
    with pytest.raises(ConfigError, match=message):
        configured(RunConfig.load(REPO / "train" / "default.toml"), override).validate()


def test_fine_points_are_refused_for_cifar10_whose_originals_are_the_image_size():
    config = RunConfig.load(REPO / "train" / "default.toml").update({"data.dataset": "cifar10"})
    with pytest.raises(ConfigError, match="CIFAR-10's are 32x32: set it to 0"):
        config.validate()


def test_a_config_saved_before_weight_weight_was_renamed_params_weight_still_loads(tmp_path):
    saved = RunConfig().to_dict()
    saved["train"]["weight_weight"] = saved["train"].pop("params_weight") / 4  # as runs were saved before the rename
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert RunConfig.load(tmp_path / "config.json").train.params_weight == RunConfig().train.params_weight / 4
    assert "weight_weight" not in RunConfig.from_dict(saved).to_dict()["train"]


def test_model_config_defaults_are_the_default_presets_model():
    """``HyperSiren(ModelConfig())`` is the model the README's main command trains, not another one."""
    assert ModelConfig() == RunConfig.load(REPO / "train" / "default.toml").model


def test_the_prior_follows_the_image_size_it_is_of():
    config = RunConfig.load(REPO / "train" / "default.toml").update({"model.prior_components": 64})
    assert config.model.prior_size == 32
    config.update({"data.image_size": 64})
    assert config.model.prior_size == 64
    config.validate()
    plain = RunConfig().update({"model.prior_components": 16, "data.image_size": 48})
    assert plain.model.prior_size == 48

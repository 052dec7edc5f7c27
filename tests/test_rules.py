"""The field rules: each field's type and value by name, and the model fields that must agree."""

from dataclasses import dataclass

import pytest

from hypersiren.across import config
from hypersiren.across.config import ModelConfig
from hypersiren.across.model import HyperSiren
from hypersiren.across.rules import field_problems, model_problems
from hypersiren.errors import ConfigError


@dataclass
class Section:
    batch_size: int = 32
    amp: bool = True
    schedule: str = "constant"


def test_each_field_is_checked_by_type_then_by_its_rule_named_section_dot_field():
    assert field_problems("train", Section()) == []
    assert field_problems("train", Section(batch_size=0, amp=1)) == [
        "train.batch_size=0 must be >= 1",
        "train.amp=1 must be true or false",
    ]
    assert field_problems("train", Section(batch_size=2.5)) == ["train.batch_size=2.5 must be an integer"]


def test_model_fields_that_must_agree_are_checked_once_each_is_well_typed():
    assert model_problems(ModelConfig()) == []
    assert model_problems(ModelConfig(encoder="conv", decoder="pixel")) == [
        "model.decoder='pixel' needs model.encoder='unet' (its local codes), not 'conv'"
    ]
    assert model_problems(ModelConfig(latent_dim="8", encoder="conv", decoder="pixel")) == [
        "model.latent_dim='8' must be an integer"
    ]


def test_the_model_refuses_what_it_cannot_build_with_the_configs_error():
    assert config.ConfigError is ConfigError  # what programs catch
    with pytest.raises(ConfigError, match="invalid ModelConfig: model.local_features=3 must exceed"):
        HyperSiren(ModelConfig(local_features=3))

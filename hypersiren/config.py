"""Run configuration: one dataclass per concern, set from a TOML preset and ``section.field=value`` overrides."""

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hypersiren.data import DataConfig
from hypersiren.model import ModelConfig


@dataclass
class TrainConfig:
    max_steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-4
    min_context: int = 10  # context pixels per training image k in [min_context, max_context]
    max_context: int = 200
    log_uniform_context: bool = False  # k log-uniform rather than uniform: small contexts trained as often as large
    top_half_fraction: float = 0.0  # share of training images that see the top half instead of k random pixels
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decays to 0 at max_steps
    fine_points: int = 0  # per image, points of the 2x-resolution image also supervised (data.fine_grid_points)
    loss: Literal["mse", "log_mse"] = "mse"  # log_mse: losses.observed_and_missing_log_mse, the PSNR scale
    latent_weight: float = 0.1
    weight_weight: float = 100.0
    grad_clip: float = 1.0
    seed: int = 0
    amp: bool = True  # bf16 autocast for encoder + hypernetwork on CUDA (the SIREN stays fp32); ignored on CPU
    log_every: int = 50
    image_every: int = 500
    checkpoint_every: int = 500
    eval_images: int = 256  # held-out images used for the PSNR logged during training


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, values: dict[str, dict[str, Any]]) -> "RunConfig":
        config = cls()
        for section, fields in values.items():
            for name, value in fields.items():
                config.set(f"{section}.{name}", value)
        return config

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """From a ``.toml`` preset or a saved ``config.json``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config at {path}: pass a preset such as train/default.toml")
        text = path.read_text()
        return cls.from_dict(json.loads(text) if path.suffix == ".json" else tomllib.loads(text))

    def set(self, key: str, value: Any) -> None:
        """Set ``section.field``; strings (from the command line) are parsed by the field's type."""
        section_name, _, name = key.partition(".")
        section = getattr(self, section_name, None)
        if not dataclasses.is_dataclass(section) or name not in {f.name for f in dataclasses.fields(section)}:
            raise KeyError(f"unknown config key {key!r}; valid keys: {', '.join(self.keys())}")
        field_type = typing.get_type_hints(type(section))[name]
        setattr(section, name, _parse(value, field_type, key) if isinstance(value, str) else value)

    def override(self, assignments: list[str]) -> "RunConfig":
        for assignment in assignments:
            key, equals, value = assignment.partition("=")
            if not equals:
                raise ValueError(f"override {assignment!r} must look like section.field=value, e.g. train.lr=1e-4")
            self.set(key.strip(), value.strip())
        return self

    def keys(self) -> list[str]:
        return [f"{s.name}.{f.name}" for s in dataclasses.fields(self) for f in dataclasses.fields(getattr(self, s.name))]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _parse(text: str, field_type: Any, key: str) -> Any:
    origin = typing.get_origin(field_type)
    try:
        if field_type is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if field_type in (int, float):
            return field_type(text)
        if origin is list:
            (item_type,) = typing.get_args(field_type)
            return [item_type(item) for item in text.strip("[]").split(",") if item.strip()]
        if origin is typing.Literal and text not in typing.get_args(field_type):
            raise ValueError(text)
    except ValueError:
        raise ValueError(f"cannot set {key} to {text!r}: expected {field_type}") from None
    return text

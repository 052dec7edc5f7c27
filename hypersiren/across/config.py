"""Run configuration: one dataclass per concern, set from a TOML preset and ``--section.field`` options.

A config is validated as a whole (``RunConfig.validate``) before a program writes,
decodes or allocates anything with it, so a bad value fails in one line instead of a
ZeroDivisionError mid-run, a silent no-op, or a config.json that no longer works.

Every program builds its options from these dataclasses before torch loads, so that ``--help`` and a mistyped
option answer at once: this module imports no torch, and what needs it (a model's parameter count, its SIREN's
config) imports it where it is called.
"""

import argparse
import dataclasses
import json
import math
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hypersiren.across.rules import field_problems, model_problems, type_name
from hypersiren.errors import ConfigError
from hypersiren.results import write_json

if TYPE_CHECKING:
    from hypersiren.core.siren import SirenConfig

# 2^30 parameters are 4 GiB of fp32 weights and 16 GiB with gradients and Adam's two moments, 20x the
# paper's model: beyond that a config is a typo (hyper_hidden_features=40000), not an experiment.
MAX_PARAMETERS = 2**30
# Fields renamed since runs were saved, so that their config.json and checkpoints still load.
RENAMED = {"train.weight_weight": "train.params_weight", "model.image_channels": "model.channels"}
EVAL_SPLITS = {
    "celeba": ("train", "val", "test"),
    "cifar10": ("train", "test", "val"),
    "folder": ("train", "val"),
    "ucr": ("train", "test"),
}

# What each field does, for --help (add_config_options), where a TOML preset's user reads it; a Literal field's
# choices are added there from its type. Every field has one (tested).
FIELD_HELP = {
    "model.channels": "values per point: 3 for RGB images, 1 for a series or a gray image",
    "model.dims": "dimensions of the signals' grid: 1 for series (data.dataset ucr), 2 for images, 3 for volumes",
    "model.latent_dim": "size of each image's global code, from which the hypernetwork makes its SIREN's weights",
    "model.encoder": "what reads the observed pixels: unet (global code + a grid of local codes, the default "
    "design), conv or set (the paper's global code only)",
    "model.encoder_widths": "channels of the encoder's stages, one per halving of the image, e.g. [32,64,96,128]",
    "model.local_features": "channels of the local code grid (unet only); its last model.channels are a value guess",
    "model.decoder": "siren: hypernetwork -> SIREN, rendered at any coordinates; pixel: the ablation, a 1x1-conv "
    "pixel head on the same unet encoder, pixel grid only",
    "model.siren_hidden_features": "width of each generated SIREN's hidden layers",
    "model.siren_hidden_layers": "hidden layers of each generated SIREN",
    "model.omega": "the SIREN's frequency scale ω₀ (sin(ω₀·Wx + b)); 30 is the paper's",
    "model.hyper_hidden_features": "width of the hypernetwork's hidden layers",
    "model.hyper_hidden_layers": "hidden layers of the hypernetwork",
    "model.prior_components": "principal components of a Gaussian (PCA) prior fitted to the training split before "
    "the first step; its conditional mean given the observed points is an encoder input and, mixed with the pull-push "
    "fill by a learned weight of the observed share, the decoder's starting guess (unet only; 0: none)",
    "model.prior_size": "side of the grid the prior is of: data.image_size (0 without a prior)",
    "model.bounded_codes": "tanh on the local codes (unet), which shift the SIREN's sine arguments: unbounded, "
    "they can grow until training diverges",
    "data.dataset": "the layout of data.root: celeba (img_align_celeba + list_eval_partition.txt), cifar10, ucr (a "
    "UCR time-series dataset: data.root is its name, e.g. OSULeaf, or its folder of .ts files), or a "
    "folder of images (train/ and val/ subfolders); see datasets/README.md",
    "data.root": "the dataset's folder (relative: from the repository in a preset, from here on the command line)",
    "data.image_size": "side in pixels the images are cropped and resized to (for series: samples they are "
    "resampled to): the model's input and output grid",
    "data.eval_split": "the held-out split scored during and after training",
    "data.download": "CIFAR-10 only: download torchvision's copy into data.root when online",
    "data.train_limit": "train on the first N images only (0: all); for quick experiments and tests",
    "data.cache": 'folder of decoded splits, memory-mapped, so a second run starts in a second ("": decode every time)',
    "train.max_steps": "optimizer steps in all; on resume the step to train to (the cosine schedule then stretches "
    "to it)",
    "train.batch_size": "images per step (at most the training images; divisible by the processes under torchrun)",
    "train.lr": "Adam's learning rate (the peak, under lr_schedule cosine)",
    "train.min_context": "fewest observed (context) pixels of a training image",
    "train.max_context": "most observed (context) pixels of a training image",
    "train.log_uniform_context": "draw the context size log-uniformly, so small contexts are trained as often as "
    "large ones (false: uniformly)",
    "train.top_half_fraction": "share of training images that observe their top half instead of random pixels",
    "train.lr_schedule": "cosine: decays from train.lr to 0 at train.max_steps; constant: train.lr throughout",
    "train.query_points": "pixels per image rendered for the loss, the missing ones first (0: every pixel); fewer "
    "is a cheaper step",
    "train.fine_points": "points per image of the 2x-resolution image also supervised, between pixel centres (0: "
    "none; must be 0 for CIFAR-10, whose originals are 32x32, and for model.decoder pixel)",
    "train.loss": "mse: mean squared error of every point; log_mse: log of each image's missing-pixel MSE (the "
    "PSNR scale, so negative) plus the observed pixels' MSE",
    "train.latent_weight": "weight of the global codes' L2 penalty in the loss (the paper's 0.1)",
    "train.params_weight": "weight of the generated SIREN parameters' L2 penalty in the loss (the paper's 100)",
    "train.grad_clip": "clip the gradient's global norm to this (a finite number > 0; a large one barely clips)",
    "train.seed": "seed of the weights, batches and training masks: the same seed gives the same run",
    "train.amp": "bf16 autocast for encoder and hypernetwork on CUDA (the SIREN stays fp32); ignored on CPU",
    "train.compile": "torch.compile mode of the training step, backward included, on any device (reduce-overhead: "
    "with CUDA graphs; off: eager)",
    "train.tf32": "TF32 matmuls on CUDA (its 10-bit mantissa also reaches the SIREN's sin(30x)); ignored on CPU",
    "train.hflip": "mirror half of each batch left-right, drawn from (seed, step): twice the images to learn from",
    "train.log_every": "steps between logged losses (history.jsonl, TensorBoard, the progress bar's PSNR)",
    "train.image_every": "steps between held-out PSNR and image grids in TensorBoard",
    "train.checkpoint_every": "steps between checkpoints (a killed run resumes from the last one)",
    "train.eval_images": "held-out images scored in TensorBoard and in the table printed at the end",
}


@dataclass
class ModelConfig:
    """The default preset's model (train/default.toml), so ``HyperSiren(ModelConfig())`` is the model users train.
    Fields added since runs were saved default to what those runs did, so that their config.json (which lacks
    them) still builds the model they trained."""

    channels: int = 3  # values per point: 3 for RGB images, 1 for a series or a gray image
    dims: int = 2  # dimensions of the signals' grid: 1 for series, 2 for images, 3 for volumes
    latent_dim: int = 128
    # "unet": global latent -> SIREN weights plus a grid of local codes -> per-point shifts;
    # "conv" / "set": the paper's global latent only.
    encoder: Literal["unet", "conv", "set"] = "unet"
    encoder_widths: list[int] = field(default_factory=lambda: [32, 64, 96, 128])
    local_features: int = 64  # channels of the local code grid ("unet" only), the last `channels` a value guess
    # "siren": hypernetwork -> SIREN weights, local codes -> its shifts; "pixel": the ablation, the same
    # "unet" encoder with a 1x1 cell head (decoders.CellHead), no hypernetwork and no SIREN.
    decoder: Literal["siren", "pixel"] = "siren"
    siren_hidden_features: int = 64
    siren_hidden_layers: int = 2
    omega: float = 30.0
    hyper_hidden_features: int = 128
    hyper_hidden_layers: int = 1
    # A Gaussian (PCA) prior of the training signals ("unet" only; priors.GaussianPrior): its conditional mean given
    # the observed points is an encoder input and, mixed with the pull-push fill by a learned weight of the observed
    # share (encoders.PriorGate), the decoder's starting guess. 0: none (pull-push fill only).
    prior_components: int = 0
    prior_size: int = 0  # side of the grid the prior is fitted on: data.image_size (the prior is of one grid)
    # tanh on the local codes ("unet"): they shift the SIREN's sine arguments, and a run of the series preset with a
    # prior diverged at step 1950 as its codes grew from 6 to 400 in ten steps (each larger code a larger gradient).
    bounded_codes: bool = False

    @property
    def siren(self) -> "SirenConfig":
        from hypersiren.core.siren import SirenConfig  # here, not above: it loads torch

        return SirenConfig(
            in_features=self.dims,
            hidden_features=self.siren_hidden_features,
            hidden_layers=self.siren_hidden_layers,
            out_features=self.channels,
            first_omega=self.omega,
            hidden_omega=self.omega,
        )


@dataclass
class DataConfig:
    dataset: Literal["celeba", "cifar10", "folder", "ucr"] = "celeba"
    root: str = "../shared/data/celeba"  # a relative root is taken from the repository root: see data.dataset_root
    image_size: int = 32
    eval_split: str = (
        "val"  # the held-out split: 'val' for CelebA here (its test images are not shipped), 'test' for CIFAR-10
    )
    download: bool = False  # CIFAR-10 only: fetch torchvision's copy into root when online
    train_limit: int = 0  # train on the first N images only (0: all); for quick experiments and tests
    cache: str = "~/.cache/hypersiren"  # decoded splits, memory-mapped ("": decode into memory every time)


def command_line_root(text: str) -> str:
    """A dataset folder given on the command line, made absolute from the working directory."""
    return str(Path(text).expanduser().absolute())


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
    query_points: int = 0  # per image, pixels rendered for the loss, the missing ones first (0: all; data.query_pixels)
    fine_points: int = 0  # per image, points of the 2x-resolution image also supervised (data.fine_grid_points)
    hflip: bool = False  # mirror half of each batch left-right: twice the images to learn from (faces, scenes)
    loss: Literal["mse", "log_mse"] = "mse"  # log_mse: objective.missing_log_mse, the PSNR scale
    latent_weight: float = 0.1
    params_weight: float = 100.0  # of the generated SIREN parameters' L2 (objective.weight_l2)
    grad_clip: float = 1.0
    seed: int = 0
    amp: bool = True  # bf16 autocast for encoder + hypernetwork on CUDA (the SIREN stays fp32); ignored on CPU
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"  # torch.compile mode of the step
    tf32: bool = False  # TF32 matmuls on CUDA (its 10-bit mantissa also reaches the SIREN's sin(30x)); ignored on CPU
    log_every: int = 50
    image_every: int = 500
    checkpoint_every: int = 500
    eval_images: int = 256  # held-out images used for the PSNR logged during training


def learning_rate(train: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based) under ``train.lr_schedule``."""
    if train.lr_schedule == "cosine":
        return train.lr * 0.5 * (1.0 + math.cos(math.pi * step / train.max_steps))
    return train.lr


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, values: dict[str, dict[str, Any]]) -> "RunConfig":
        if not isinstance(values, dict) or not all(isinstance(fields, dict) for fields in values.values()):
            raise ConfigError("a config must map sections (model, data, train) to their fields")
        config = cls()
        for section, fields in values.items():
            for name, value in fields.items():
                key = f"{section}.{name}"
                config.set(RENAMED.get(key, key), value)
        return config

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """From a ``.toml`` preset or a saved ``config.json``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config at {path}: pass a preset such as train/default.toml")
        try:  # TOML and JSON files are UTF-8 by their specifications, whatever this machine's locale
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}): "
                "save it as UTF-8"
            ) from None
        try:
            values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except ValueError as error:  # both decoders' errors are ValueErrors
            raise ConfigError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({error})") from None
        return cls.from_dict(values)

    def field_type(self, key: str) -> Any:
        """The type of the field ``section.field``; ``ConfigError`` naming the valid keys for another key."""
        section_name, _, name = key.partition(".")
        section = getattr(self, section_name, None)
        if not dataclasses.is_dataclass(section) or name not in {f.name for f in dataclasses.fields(section)}:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(self.keys())}")
        return typing.get_type_hints(type(section))[name]

    def set(self, key: str, value: Any) -> None:
        """Set ``section.field`` to ``value`` as it is (``validate`` checks its type). ``model.prior_size`` follows
        ``data.image_size`` (a prior is of the training grid): ``--data.image_size 64`` moves both."""
        self.field_type(key)
        section, _, name = key.partition(".")
        setattr(getattr(self, section), name, value)
        if key in ("data.image_size", "model.prior_components") and self.model.prior_components:
            self.model.prior_size = self.data.image_size

    def update(self, values: dict[str, Any]) -> "RunConfig":
        """Set each ``section.field`` of ``values`` (the command line's options, already typed)."""
        for key, value in values.items():
            self.set(key, value)
        return self

    def keys(self) -> list[str]:
        return [
            f"{s.name}.{f.name}" for s in dataclasses.fields(self) for f in dataclasses.fields(getattr(self, s.name))
        ]

    @property
    def grid(self) -> tuple[int, ...]:
        """The signals' grid: ``data.image_size`` along each of ``model.dims`` axes ((32, 32) for the default)."""
        return (self.data.image_size,) * self.model.dims

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def validate(self) -> "RunConfig":
        """Raise ``ConfigError`` naming every value that cannot work, before anything is written or allocated.

        Checks each field's type, the rules above, ``1 <= min_context <= max_context <= image_size²``,
        and the model's parameter count (built on the meta device: nothing is allocated).
        """
        problems = [
            problem
            for section in dataclasses.fields(self)
            for problem in field_problems(section.name, getattr(self, section.name))
        ]
        if not problems:  # the checks across fields assume each field is well typed
            checks = [_context_problem(self.train, self.grid), *model_problems(self.model)]
            checks += [_points_problem(self), _split_problem(self.data), _signal_problem(self), _prior_problem(self)]
            problems = [problem for problem in checks if problem]
            if not problems:  # counting parameters builds the model, which needs a consistent config
                problems = [problem for problem in (_size_problem(self.model),) if problem]
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def save(self, path: str | Path) -> None:
        """Validate, then write atomically: a crash or full disk leaves the previous config.json whole."""
        write_json(self.validate().to_dict(), path)


def _prior_problem(config: RunConfig) -> str | None:
    """The prior is of the training grid, with fewer components than the grid has values."""
    model, size = config.model, config.data.image_size
    if not model.prior_components:
        return None
    if model.prior_size != size:
        return f"model.prior_size={model.prior_size} must be data.image_size={size}: the prior is of the training grid"
    values = model.channels * size**model.dims
    if model.prior_components >= values:
        return f"model.prior_components={model.prior_components} must be below the {values} values of a signal"
    return None


def validate_data_config(config: DataConfig) -> None:
    """``ConfigError`` for a data config that cannot be loaded (an empty root, an image size out of range)."""
    problems = field_problems("data", config)
    if problems:
        raise ConfigError("; ".join(problems))


def require_same_model(saved: RunConfig, asked: RunConfig) -> None:
    """On resume the model section cannot change: the checkpoint's weights have its shapes and were
    trained with its omega. Raise ``ConfigError`` naming each changed field instead of ignoring it."""
    saved_model, asked_model = dataclasses.asdict(saved.model), dataclasses.asdict(asked.model)
    changed = [name for name in asked_model if asked_model[name] != saved_model.get(name)]
    if changed:
        details = ", ".join(f"model.{name} {saved_model.get(name)!r} -> {asked_model[name]!r}" for name in changed)
        raise ConfigError(
            f"cannot change the model of a trained run on resume ({details}): the checkpoint's weights "
            "are that model; drop the override, or train a new run with another --out"
        )


def parameter_count(config: ModelConfig) -> int:
    """Parameters of ``HyperSiren(config)``, counted on the meta device, so no memory is allocated.

    Counting the built module instead of a formula keeps this right whatever the model's layout.
    """
    import torch  # here, not above, as the model: reading a config must not load torch

    from hypersiren.across.model import HyperSiren

    with torch.device("meta"):
        return sum(parameter.numel() for parameter in HyperSiren(config).parameters())


def _context_problem(train: TrainConfig, grid: tuple[int, ...]) -> str | None:
    pixels = math.prod(grid)
    if train.min_context <= train.max_context <= pixels:
        return None
    fix = "lower train.max_context" if train.max_context > pixels else "lower train.min_context"
    what = (
        f"pixels of a {grid[0]}x{grid[1]} image" if len(grid) == 2 else f"points of a {'x'.join(map(str, grid))} grid"
    )
    asked = f"[{train.min_context}, {train.max_context}]"
    return f"need 1 <= train.min_context <= train.max_context <= {pixels} ({what}), got {asked}: {fix}"


def _signal_problem(config: "RunConfig") -> str | None:
    """Series are 1-D signals of one channel; the image datasets are 2-D RGB."""
    dims, channels = (1, 1) if config.data.dataset == "ucr" else (2, 3)
    if (config.model.dims, config.model.channels) == (dims, channels):
        return None
    return (
        f"data.dataset={config.data.dataset!r} holds {dims}-D signals of {channels} channels, but the model has "
        f"model.dims={config.model.dims} and model.channels={config.model.channels}: set them to {dims} and {channels}"
    )


def _points_problem(config: "RunConfig") -> str | None:
    model, train, size = config.model, config.train, config.data.image_size
    if train.query_points > size * size:
        return (
            f"train.query_points={train.query_points} exceeds the {size * size} pixels of a {size}x{size} image: "
            f"lower it to at most {size * size} (0 renders every pixel)"
        )
    if train.fine_points > (2 * size) ** 2:
        return (
            f"train.fine_points={train.fine_points} exceeds the {(2 * size) ** 2} pixels of the {2 * size}x{2 * size} "
            f"image they are drawn from (more only repeats them): lower it to at most {(2 * size) ** 2}"
        )
    if model.decoder == "pixel" and train.fine_points:
        return (
            "model.decoder='pixel' renders only its pixel grid, so it cannot learn from train.fine_points: "
            "set --train.fine_points 0"
        )
    if train.fine_points and config.data.dataset == "cifar10":
        return "train.fine_points needs originals larger than data.image_size, and CIFAR-10's are 32x32: set it to 0"
    return None


def _split_problem(data: DataConfig) -> str | None:
    splits = EVAL_SPLITS.get(data.dataset, ())
    if data.eval_split in splits:
        return None
    return f"data.eval_split={data.eval_split!r} is not a {data.dataset} split: choose one of {', '.join(splits)}"


def _size_problem(config: ModelConfig) -> str | None:
    count = parameter_count(config)
    if count <= MAX_PARAMETERS:
        return None
    return (
        f"the model would have {count:,} parameters ({4 * count / 2**30:.1f} GiB in fp32), more than the "
        f"{MAX_PARAMETERS:,} allowed: lower model.hyper_hidden_features or model.siren_hidden_features"
    )


def option_type(key: str, hint: Any) -> Callable[[str], Any]:
    """The argparse ``type=`` of the config field ``key`` of type ``hint``: its value from one command-line word.

    ``true``/``false`` (or 1/0) for a bool, ``[8,16]`` for a list; a relative ``data.root`` is taken from the
    working directory, as every command-line path is (a preset's, from the repository).
    """
    if key == "data.root":
        return command_line_root

    def parse(text: str) -> Any:
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        try:
            if hint is bool and text.lower() in ("true", "false", "1", "0"):
                return text.lower() in ("true", "1")
            if origin is list:
                return [arguments[0](item) for item in text.strip("[]").split(",") if item.strip()]
            if origin is Literal and text in arguments:
                return text
            if hint in (int, float, str):
                return hint(text)
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(f"expected {type_name(hint)}")

    return parse

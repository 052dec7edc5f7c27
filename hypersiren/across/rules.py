"""What each config field must be: its type, the rule on its value by name, and the model's fields that must agree.

Beneath both ``model`` (which refuses a model config it cannot build) and ``config`` (which validates
a whole run), so that neither imports the other.
"""

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any

# Images are decoded whole into memory and every pixel is rendered each step; far beyond the paper's 32.
MAX_IMAGE_SIZE = 1024
MIN_IMAGE_SIZE = 2  # a 1x1 image's top half is all of it: nothing is left to inpaint or score
MAX_SEED = 2**32 - 1  # the largest seed both torch and numpy take
# Bounds that keep every accepted model buildable: a square layer wider than 2^15 alone has 2^30 parameters (config's
# MAX_PARAMETERS), and a wider one overflows the tensor sizes that counting parameters builds, in C++, with a traceback.
MAX_WIDTH = 2**15
MAX_LAYERS = 64  # the paper's are 3-5 deep; counting parameters builds every layer, so 10^8 of them hang the check
MAX_LEVELS = 10  # encoder levels: each halves the image, and 2^10 is data.image_size's largest
MAX_OMEGA = 1e4  # sin(omega x) in fp32: beyond, x's rounding alone moves the phase by more than 1e-3 rad
MAX_STEPS = 10**12  # batches are seeded by seed * 1_000_003 + step, which must stay below 2^64
# Points per pixel and axis that inpaint averages: 2 is what training between pixel centres teaches, 4 the most any
# program offers (beyond it the cost grows as its square for nothing measured: 100 took 7 minutes for 2 images).
MAX_SUPERSAMPLE = 4
# The largest side a user's photo is completed at (user_images): scikit-image's biharmonic fill, run twice per photo
# at that size, takes ~1.5 s at 256x256 and ~15 s at 512x512 on one CPU core, and grows faster than the pixel count.
MAX_PHOTO_SIDE = 512


def _at_least(minimum: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: value >= minimum), f">= {minimum}"


def _between(low: int, high: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: low <= value <= high), f"in [{low}, {high}]"


_POSITIVE = (lambda value: 0 < value < math.inf), "a finite number > 0"
_NON_NEGATIVE = (lambda value: 0 <= value < math.inf), "a finite number >= 0"

# What each field needs beyond its type, by name: a section may gain fields (the model will), which
# are then only type-checked, and a field that goes away is simply not checked.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.channels": _between(1, 4),  # gray to RGBA
    "model.dims": _between(1, 3),  # series, images, volumes
    "model.latent_dim": _between(1, MAX_WIDTH),
    "model.local_features": _between(1, MAX_WIDTH),
    "model.siren_hidden_features": _between(1, MAX_WIDTH),
    "model.siren_hidden_layers": _between(0, MAX_LAYERS),
    "model.hyper_hidden_features": _between(1, MAX_WIDTH),
    "model.hyper_hidden_layers": _between(0, MAX_LAYERS),
    "model.omega": ((lambda omega: 0 < omega <= MAX_OMEGA), f"a number in (0, {MAX_OMEGA:g}]"),
    "model.encoder_widths": (
        lambda widths: 0 < len(widths) <= MAX_LEVELS and 1 <= min(widths) and max(widths) <= MAX_WIDTH,
        f"a list of 1 to {MAX_LEVELS} widths in [1, {MAX_WIDTH}]",
    ),
    "model.prior_components": _between(0, MAX_WIDTH),
    "model.prior_size": _between(0, MAX_IMAGE_SIZE),
    "data.image_size": _between(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    "data.root": ((lambda root: root.strip() != ""), "a folder"),
    "data.train_limit": _at_least(0),
    "train.max_steps": _between(1, MAX_STEPS),
    "train.batch_size": _at_least(1),
    "train.lr": _POSITIVE,
    "train.min_context": _at_least(1),
    "train.max_context": _at_least(1),
    "train.latent_weight": _NON_NEGATIVE,
    "train.params_weight": _NON_NEGATIVE,
    "train.grad_clip": ((lambda clip: 0 < clip < math.inf), "> 0 and finite (config.json, strict JSON, holds no inf)"),
    "train.log_every": _at_least(1),
    "train.image_every": _at_least(1),
    "train.checkpoint_every": _at_least(1),
    "train.eval_images": _at_least(1),
    "train.fine_points": _at_least(0),
    "train.query_points": _at_least(0),
    "train.seed": _between(0, MAX_SEED),  # what torch and numpy take
    "train.top_half_fraction": ((lambda share: 0 <= share <= 1), "in [0, 1]"),
}


def field_problems(section: str, values: Any) -> list[str]:
    """One entry per field of the dataclass ``values`` (config section ``section``) of the wrong type or against
    its rule, as ``section.field=value must be …``."""
    problems = []
    hints = typing.get_type_hints(type(values))
    for config_field in dataclasses.fields(values):
        key, value = f"{section}.{config_field.name}", getattr(values, config_field.name)
        if not has_type(value, hints[config_field.name]):
            problems.append(f"{key}={value!r} must be {type_name(hints[config_field.name])}")
        elif key in RULES and not RULES[key][0](value):
            problems.append(f"{key}={value!r} must be {RULES[key][1]}")
    return problems


def model_problems(model: Any) -> list[str]:
    """What makes the ``ModelConfig`` ``model`` unbuildable, one fix per entry (``HyperSiren`` raises them): each
    field's type and rule, then the fields that must agree. The parameter count is not checked here."""
    problems = field_problems("model", model)
    if problems:  # the checks across fields assume each field is well typed
        return problems
    if model.encoder == "unet" and model.local_features <= model.channels:
        problems.append(
            f"model.local_features={model.local_features} must exceed model.channels={model.channels}: "
            "the last model.channels local code channels are the value guess"
        )
    if model.decoder == "pixel" and model.encoder != "unet":
        problems.append(f"model.decoder='pixel' needs model.encoder='unet' (its local codes), not {model.encoder!r}")
    if model.prior_components and (model.encoder != "unet" or model.prior_size < 1):
        problems.append(
            f"model.prior_components={model.prior_components} needs model.encoder='unet' (its input and value guess) "
            "and model.prior_size, the grid's side (data.image_size)"
        )
    return problems


def has_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the field type ``hint``; a kind of hint not listed here is not checked."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(has_type(item, arguments[0]) for item in value)
    if origin is typing.Literal:
        return value in arguments
    if origin in (typing.Union, types.UnionType):
        return any(has_type(value, argument) for argument in arguments)
    return True


def type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))

"""What every program in train/ and eval/ shares: one command-line style and one way to fail.

Options are ``--flags``; the ones several programs take (device, run folder, network size,
fitting schedule) are defined here once, and train.py reflects every config field as
``--section.field`` so ``--help`` lists them all and a misspelt one is refused by argparse.
``--help`` shows what will run: every option's default, and for a config field the value of
the preset in use.

Every option is checked where it is parsed (``int_in``, ``positive_float``, ``seed``, ``--device``):
a value that passes is one the program can run to its end with.

A missing dataset, a corrupt checkpoint, a bad value, a run too large for memory, a full disk or a
read-only folder is the user's to fix, and a 30-line traceback hides the one line that says how:
``exits_cleanly`` prints ``error: <one line>`` and exits 2. Ctrl-C prints ``interrupted`` and exits
130, as a shell expects. Anything else is a bug and keeps its traceback.

Nothing here loads torch, which takes seconds: a program parses its command line (``parse_before_imports``)
before it imports the rest, so that ``--help`` and a mistyped option answer at once. Only ``--device``, checked
once everything else has parsed, needs torch to know this machine's devices.
"""

import argparse
import copy
import dataclasses
import errno
import math
import os
import re
import signal
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NoReturn

from tqdm import tqdm

from hypersiren.across.config import FIELD_HELP, RunConfig, option_type
from hypersiren.across.rules import MAX_OMEGA, MAX_SEED
from hypersiren.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    FitDivergedError,
    MemoryLimitError,
    NonFiniteResultError,
)

EXIT_CODE = 2  # as argparse uses for a bad command line
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C
# A fit's network beyond these is a typo (--hidden 25600), not an experiment: the paper's are 256 wide, 3-5 deep.
MAX_FIT_WIDTH, MAX_FIT_LAYERS = 4096, 64
MAX_FIT_SIZE = 2048  # px per side of a fitted photo or a render: 4 M points, each rendered every step
# A smaller photo is scored perfect for nothing: 1 px is matched by its offset alone, 2 px by the harmonic match's 5
# functions, and the Sobel and 5-point filters' 3x3 stencils see mostly the border.
MIN_FIT_SIZE = 8
# The photos bundled with scikit-image (8-bit, no download) that the fit programs offer.
PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "coins", "moon", "rocket")

# Every word float() reads as a negative number; no option of these programs looks like one.
_NEGATIVE_NUMBER = re.compile(r"^-(?:(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:e[-+]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)

_OS_FIXES = {
    errno.ENOSPC: "free space on that disk, or write elsewhere",
    errno.EDQUOT: "free space within your quota, or write elsewhere",
    errno.EACCES: "check its permissions, or write elsewhere",
    errno.EPERM: "check its permissions, or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder, not a file: check the path",
    errno.EEXIST: "a file is in the way where a folder is needed: move it, or choose another path",
}


@contextmanager
def exits_cleanly() -> Iterator[None]:
    """Turn dataset, checkpoint, config, memory and file-system errors into ``error: <one line>`` and exit 2;
    Ctrl-C into ``interrupted`` and exit 130.

    Use as ``@exits_cleanly()`` on a program's ``main``. Puts Python's own Ctrl-C handler back, in place of the one
    ``hypersiren.start`` installs for the imports, so that a program can say what an interrupt stopped.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with _expected_errors_in_one_line():
        yield


def parse_before_imports(parse_args: Callable[[], object], module: str) -> None:
    """Parse the command line now if ``module`` (the caller's ``__name__``) runs as a program, its expected errors as
    ``exits_cleanly`` ends them: called between a program's option imports and the others, so that ``--help`` and a
    mistyped option end it before the seconds torch takes to load. ``main`` parses again (milliseconds) to use the
    result; a program imported as a module (by a test) parses nothing here.

    Ctrl-C keeps ``hypersiren.start``'s handler until ``main`` runs: the imports that follow are still to come.
    """
    if module == "__main__":
        with _expected_errors_in_one_line():
            parse_args()


@contextmanager
def _expected_errors_in_one_line() -> Iterator[None]:
    """``exits_cleanly``'s ``error: <one line>`` and exit 2 (and 130 for Ctrl-C), without its Ctrl-C handler."""
    try:
        yield
    except (
        DatasetError,
        CheckpointError,
        ConfigError,
        MemoryLimitError,
        FitDivergedError,
        NonFiniteResultError,
        OSError,
    ) as error:
        close_progress_bars()
        print(f"error: {describe(error)}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None
    except KeyboardInterrupt:
        close_progress_bars()
        print("interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None


def close_progress_bars() -> None:
    """Close every open tqdm bar now, so that the line printed next is the last one on the terminal: a bar left
    open closes when the traceback holding it is freed, after the message, and redraws itself below it."""
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def describe(error: BaseException) -> str:
    """One line for an expected error: an OSError as reason, path and fix; others as their own message."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        fix = _OS_FIXES.get(error.errno)
        return f"{error.strerror}{where}" + (f" ({fix})" if fix else "")
    return " ".join(str(error).split())


def program(description: str | None, device_option: bool = True) -> argparse.ArgumentParser:
    """The parser every program starts from: its docstring as help, each option's default shown, and ``--device``
    (for the programs that compute on one: not the dataset tools)."""
    parser_type = _ComputingProgram if device_option else _OneLineErrors
    return parser_type(description=description, formatter_class=_HelpFormatter)


def _checked_device(text: str | None) -> str:
    """``text`` if it names a torch device of this machine (None: cuda where available, else cpu); otherwise
    ``argparse.ArgumentTypeError`` naming the devices it has: cpu, then cuda and each cuda:N, then mps."""
    import torch  # here, not above: only a command line that parsed waits for it (the module docstring)

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        devices.append("mps")
    if text is None:
        return "cuda" if "cuda" in devices else "cpu"
    if text in devices:
        return text
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: this machine has {', '.join(devices)}") from None
    raise argparse.ArgumentTypeError(f"device {text!r} is not available here: this machine has {', '.join(devices)}")


def number_in(kind: type[int] | type[float], low: float, high: float = math.inf) -> Callable[[str], float]:
    """An argparse type: an ``int`` or ``float`` in [low, high] (NaN refused: it compares false)."""
    what = "an integer" if kind is int else "a number"
    bounds = f"in [{low}, {high}]" if high < math.inf else f">= {low}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} {bounds}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def int_in(low: int, high: float = math.inf) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""
    return number_in(int, low, high)


def float_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number in [low, high]."""
    return number_in(float, low, high)


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (a learning rate, omega)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


seed = int_in(0, MAX_SEED)  # an argparse type: a seed both torch and numpy take


def omega_value(text: str) -> float:
    """An argparse type: a SIREN ω₀ in (0, MAX_OMEGA], the bound model.omega has (beyond it sin(ω₀x) in fp32 is
    noise, and 1e308 overflows: a fit would then diverge and blame its learning rate)."""
    value = positive_float(text)
    if value > MAX_OMEGA:
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_OMEGA:g}], got {text}")
    return value


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written (its examples keep their lines), and ``(default: …)`` after each option's help,
    an option without help included, except where there is no default to show: a required option, a
    suppressed default, or None (the help says what happens then)."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and self._shows_default(action):  # argparse prints nothing for an option without help
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return super()._get_help_string(action) if self._shows_default(action) else action.help

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        return not action.required and action.default not in (None, argparse.SUPPRESS)


class _OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``error:`` line, not the usage of 40 options, and a negative number
    (``--train.lr -1e-3``, ``-inf``) is a value: argparse's own pattern takes ``-1e-3`` and ``-inf`` for options,
    so that the option before it would "expect one argument" instead of saying what is wrong with the value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_CODE)


class _ComputingProgram(_OneLineErrors):
    """The parser of a program that computes on a torch device: ``--device`` is checked against this machine's devices
    (``_checked_device``) once every other option has parsed, before anything is read or written, so that ``--help``
    and a mistyped option never wait for torch to load."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--device", help="torch device (default: cuda where available, else cpu)")

    def parse_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        try:
            parsed.device = _checked_device(parsed.device)
        except argparse.ArgumentTypeError as refusal:
            self.error(f"argument --device: {refusal}")
        return parsed


# The face model the programs that complete a user's photo start from (eval/own_size.py measures it at 64-256 px),
# relative to the working directory where it can be: the path --help shows.
_BEST_FACE_MODEL = Path(__file__).resolve().parents[1] / "pretrained" / "celeba64"
BEST_FACE_MODEL = (
    os.path.relpath(_BEST_FACE_MODEL) if _BEST_FACE_MODEL.is_relative_to(Path.cwd()) else str(_BEST_FACE_MODEL)
)


def add_run_options(parser: argparse.ArgumentParser, default_run: str | None = None) -> None:
    """Options of the programs that read a trained run: the run folder (``default_run`` where a program has one),
    where its data went, the mask seed."""
    if default_run is None:
        parser.add_argument("--run", required=True, help="run directory written by train/train.py")
    else:
        parser.add_argument("--run", default=default_run, help="run directory written by train/train.py")
    parser.add_argument("--data.root", dest="data_root", help="dataset folder, if not the run's data.root")
    parser.add_argument(
        "--seed", type=seed, default=0, help="seed of the context masks (the same in every eval program)"
    )


def add_config_options(
    parser: argparse.ArgumentParser, default_preset: str | Path, argv: Sequence[str] | None = None
) -> RunConfig:
    """``--config PRESET`` and every ``RunConfig`` field as ``--section.field VALUE``, typed by the field (plain
    argparse ``type=``, ``config.option_type``); return the preset, loaded.

    ``--config`` is read from ``argv`` (default: the command line) before anything else, so that
    ``--help`` shows each field's value in the preset that will run rather than the dataclass's.
    Only the fields given become overrides (``config_overrides``): the preset's value is not a default.
    """
    preset_option = {
        "default": str(default_preset),
        "help": "TOML preset: the values of every field below (ignored when resuming)",
    }
    path = named_preset(argv) or str(default_preset)
    preset = RunConfig.load(path)
    parser.add_argument("--config", **preset_option)
    shown_path, blank = _shown_path(path), RunConfig()  # the dataclass's defaults name each field's type
    for section in dataclasses.fields(preset):
        group = parser.add_argument_group(f"[{section.name}] config fields (override the preset {shown_path})")
        for field in dataclasses.fields(getattr(preset, section.name)):
            key, value = f"{section.name}.{field.name}", getattr(getattr(preset, section.name), field.name)
            group.add_argument(
                f"--{key}",
                type=option_type(key, preset.field_type(key)),
                default=argparse.SUPPRESS,
                metavar=type(getattr(getattr(blank, section.name), field.name)).__name__.upper(),
                help=f"{field_help(key, preset.field_type(key))} (default from {shown_path}: {value!r})".replace(
                    "%",
                    "%%",  # argparse formats help with %
                ),
            )
    return preset


def named_preset(argv: Sequence[str] | None = None) -> str | None:
    """The ``--config`` that ``argv`` (default: the command line) names, None where it names none: read before the
    other options (``add_config_options``), and on resume, where a named preset is not read (train/train.py)."""
    preset_parser = _OneLineErrors(add_help=False)
    preset_parser.add_argument("--config", help="the preset, read before the other options")
    return preset_parser.parse_known_args(argv)[0].config


def field_help(key: str, hint: Any) -> str:
    """What the config field ``key`` does (``config.FIELD_HELP``; a field added without one still parses, and a
    test names it), and a ``Literal`` field's choices."""
    choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
    return FIELD_HELP.get(key, key) + (f"; one of: {', '.join(choices)}" if choices else "")


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory where it lies under it (train/default.toml, not /home/…)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config options given on the command line, ``{"section.field": value}``, typed by their fields."""
    return {key: value for key, value in vars(args).items() if "." in key}


def add_fit_options(
    parser: argparse.ArgumentParser,
    steps: int,
    lr: float = 1e-4,
    hidden: int = 256,
    layers: int = 3,
    omega: float = 30.0,
) -> None:
    """Options of the single-signal fit programs: output folder, network size and Adam schedule."""
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--steps", type=int_in(1), default=steps, help="Adam steps per fit")
    parser.add_argument("--lr", type=positive_float, default=lr, help="Adam learning rate")
    width, depth = int_in(1, MAX_FIT_WIDTH), int_in(0, MAX_FIT_LAYERS)
    parser.add_argument("--hidden", type=width, default=hidden, help="hidden width of every network")
    parser.add_argument("--layers", type=depth, default=layers, help="hidden layers of every network")
    parser.add_argument(
        "--omega",
        type=omega_value,
        default=omega,
        help="SIREN ω₀; ≈10 suits 64 px images (docs/results.md, Standalone SIREN)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of every initialization")

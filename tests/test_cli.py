import ast
import errno
import gc
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

from hypersiren.across.config import RunConfig
from hypersiren.cli import (
    add_config_options,
    add_fit_options,
    config_overrides,
    exits_cleanly,
    program,
)
from hypersiren.errors import MemoryLimitError

PRESETS = Path(__file__).resolve().parents[1] / "train"
PROGRAMS = [*PRESETS.glob("*.py"), *(PRESETS.parent / "eval").glob("*.py"), PRESETS.parent / "hypersiren" / "cli.py"]


def test_every_config_field_is_an_option_and_only_given_ones_override():
    parser = program("test")
    command_line = ["--train.lr", "3e-4", "--model.encoder_widths=[8,16]", "--device", "cpu"]
    preset = add_config_options(parser, default_preset=PRESETS / "default.toml", argv=command_line)
    args = parser.parse_args(command_line)
    assert config_overrides(args) == {"train.lr": 3e-4, "model.encoder_widths": [8, 16]}  # typed; not the preset's
    config = preset.update(config_overrides(args))
    assert config.train.lr == 3e-4 and config.model.encoder_widths == [8, 16]
    assert config.train.max_steps == RunConfig.load(PRESETS / "default.toml").train.max_steps
    options = {action.dest for action in parser._actions}
    assert set(RunConfig().keys()) <= options


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--train.max_steps=ten", "argument --train.max_steps: expected an integer"),
        ("--train.amp=maybe", "argument --train.amp: expected true or false"),
        ("--data.dataset=imagenet", "argument --data.dataset: expected one of 'celeba', 'cifar10', 'folder'"),
    ],
)
def test_a_config_option_is_typed_by_its_field_when_parsed(option, message, capsys):
    parser = program("test")
    add_config_options(parser, default_preset=PRESETS / "default.toml", argv=[])
    with pytest.raises(SystemExit):
        parser.parse_args([option])
    assert message in capsys.readouterr().err
    args = parser.parse_args(["--train.amp=false", "--model.encoder_widths=[4,8]", "--data.root", "faces"])
    assert config_overrides(args) == {
        "train.amp": False,
        "model.encoder_widths": [4, 8],
        "data.root": str(Path.cwd() / "faces"),  # a command-line path is the shell's
    }


@pytest.mark.parametrize(("preset", "lr"), [("default.toml", "0.001"), ("paper.toml", "5e-05")])
def test_help_shows_the_values_of_the_preset_in_use(preset, lr, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option
    monkeypatch.chdir(PRESETS.parent)  # the preset is named relative to the working directory
    parser = program("test")
    add_config_options(parser, default_preset=PRESETS / "default.toml", argv=["--config", str(PRESETS / preset)])
    (line,) = [line for line in parser.format_help().splitlines() if line.strip().startswith("--train.lr ")]
    assert line.endswith(f"(default from train/{preset}: {lr})"), line


def test_every_config_field_says_what_it_does_and_lists_its_choices():
    parser = program("test")
    add_config_options(parser, default_preset=PRESETS / "default.toml", argv=[])
    helps = {action.dest: action.help for action in parser._actions}
    for key in RunConfig().keys():
        meaning = helps[key].partition("(default from")[0]
        assert len(meaning.split()) >= 3, f"--{key} has no help: {helps[key]}"
    assert "one of: unet, conv, set" in helps["model.encoder"] and "one of: siren, pixel" in helps["model.decoder"]
    assert "one of: celeba, cifar10, folder" in helps["data.dataset"]
    assert "one of: mse, log_mse" in helps["train.loss"] and "one of: constant, cosine" in helps["train.lr_schedule"]


@pytest.mark.parametrize("path", sorted(str(path) for path in PROGRAMS), ids=lambda path: Path(path).name)
def test_every_option_of_every_program_says_what_it_does(path):
    calls = [node for node in ast.walk(ast.parse(Path(path).read_text())) if isinstance(node, ast.Call)]
    options = [call for call in calls if getattr(call.func, "attr", "") == "add_argument"]
    undocumented = [
        ast.unparse(call)[:80] for call in options if not {"help", "**"} & {k.arg or "**" for k in call.keywords}
    ]
    assert not undocumented


def test_help_shows_every_default_and_no_none(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    parser = program("test")
    add_fit_options(parser, steps=7)  # --out is required
    parser.add_argument("--limit", type=int, help="first N images only")
    parser.add_argument("--rows", type=int, default=8)  # no help: its default is still shown
    lines = {line.split()[0]: line for line in parser.format_help().splitlines() if line.strip().startswith("--")}
    assert lines["--steps"].endswith("Adam steps per fit (default: 7)")
    assert lines["--rows"].endswith("(default: 8)")
    assert lines["--device"].endswith("torch device (default: cuda where available, else cpu)")  # torch not loaded
    assert lines["--out"].endswith("output directory") and lines["--limit"].endswith("first N images only")
    assert "None" not in parser.format_help()


def test_a_bad_command_line_is_one_error_line(capsys):
    parser = program("test")
    add_config_options(parser, default_preset=PRESETS / "default.toml", argv=[])
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--train.lrr", "1"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "unrecognized arguments: --train.lrr" in lines[0] and "--help" in lines[0]


def refusal(parser, capsys, *argv: str) -> str:
    """The one error line of a command line that ``parser`` refuses."""
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(list(argv))
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_a_device_this_machine_lacks_is_named_with_the_ones_it_has(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    parser = program("test")
    assert parser.parse_args(["--device", "cpu"]).device == "cpu" and parser.parse_args([]).device == "cpu"
    assert "device 'cuda' is not available here: this machine has cpu" in refusal(parser, capsys, "--device", "cuda")
    assert "unknown device 'gpu': this machine has cpu" in refusal(parser, capsys, "--device", "gpu")


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["--steps", "0"], "--steps: must be >= 1, got 0"),
        (["--lr", "0"], "--lr: must be a finite number > 0, got 0"),
        (["--lr", "nan"], "--lr: must be a finite number > 0, got nan"),
        (["--lr", "inf"], "--lr: must be a finite number > 0, got inf"),
        (["--hidden", "0"], "--hidden: must be in [1, 4096], got 0"),
        (["--layers", "-1"], "--layers: must be in [0, 64], got -1"),
        (["--omega", "-30"], "--omega: must be a finite number > 0, got -30"),
        (["--seed", "-1"], "--seed: must be in [0, 4294967295], got -1"),
        (["--seed", "4294967296"], "--seed: must be in [0, 4294967295], got 4294967296"),
        (["--seed", "1.5"], "--seed: must be an integer in [0, 4294967295], got '1.5'"),
    ],
)
def test_fit_options_are_checked_where_they_are_parsed(argv, phrase, capsys):
    parser = program("test")
    add_fit_options(parser, steps=7)
    assert phrase in refusal(parser, capsys, "--out", "x", "--device", "cpu", *argv)


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    with pytest.raises(SystemExit) as exit_info, exits_cleanly():
        raise KeyboardInterrupt
    assert exit_info.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_a_run_too_large_for_memory_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info, exits_cleanly():
        raise MemoryLimitError("a step needs about 99.0 GiB: lower train.batch_size")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: a step needs about 99.0 GiB: lower train.batch_size\n"


def test_the_error_is_the_last_line_even_with_a_progress_bar_left_open(capsys):
    @exits_cleanly()
    def training() -> None:
        progress = tqdm(total=10, desc="training")  # open when the error leaves, as train.py's bar is
        progress.update(3)
        raise OSError(errno.ENOSPC, "No space left on device", "run/checkpoint.pt")

    with pytest.raises(SystemExit) as exit_info:
        training()
    del exit_info  # frees the traceback, and with it the bar: an open bar redraws itself as it closes
    gc.collect()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "error: No space left on device: run/checkpoint.pt (free space on that disk, or write elsewhere)"

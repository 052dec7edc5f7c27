from pathlib import Path

import pytest
import torch

from hypersiren.across.config import RunConfig
from hypersiren.cli import add_config_options, add_fit_options, config_overrides, program, seeded_siren

PRESETS = Path(__file__).resolve().parents[1] / "train"


def test_every_config_field_is_an_option_and_only_given_ones_override():
    parser = program("test")
    command_line = ["--train.lr", "3e-4", "--model.encoder_widths=[8,16]", "--device", "cpu"]
    preset = add_config_options(parser, default_preset=PRESETS / "default.toml", argv=command_line)
    args = parser.parse_args(command_line)
    assert config_overrides(args) == ["train.lr=3e-4", "model.encoder_widths=[8,16]"]  # not the preset's values
    config = preset.override(config_overrides(args))
    assert config.train.lr == 3e-4 and config.model.encoder_widths == [8, 16]
    assert config.train.max_steps == RunConfig.load(PRESETS / "default.toml").train.max_steps
    options = {action.dest for action in parser._actions}
    assert set(RunConfig().keys()) <= options


@pytest.mark.parametrize(("preset", "lr"), [("default.toml", "0.001"), ("paper.toml", "5e-05")])
def test_help_shows_the_values_of_the_preset_in_use(preset, lr, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option
    monkeypatch.chdir(PRESETS.parent)  # the preset is named relative to the working directory
    parser = program("test")
    add_config_options(parser, default_preset=PRESETS / "default.toml", argv=["--config", str(PRESETS / preset)])
    (line,) = [line for line in parser.format_help().splitlines() if line.strip().startswith("--train.lr ")]
    assert line.endswith(f"default from train/{preset}: {lr}"), line


def test_help_shows_every_default_and_no_none(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    parser = program("test")
    add_fit_options(parser, steps=7)  # --out is required
    parser.add_argument("--limit", type=int, help="first N images only")
    parser.add_argument("--rows", type=int, default=8)  # no help: its default is still shown
    lines = {line.split()[0]: line for line in parser.format_help().splitlines() if line.strip().startswith("--")}
    assert lines["--steps"].endswith("Adam steps per fit (default: 7)")
    assert lines["--rows"].endswith("(default: 8)")
    assert lines["--device"].endswith(f"(default: {'cuda' if torch.cuda.is_available() else 'cpu'})")
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


def test_fit_options_build_the_same_siren_each_time():
    parser = program("test")
    add_fit_options(parser, steps=7)
    args = parser.parse_args(["--out", "x", "--hidden", "12", "--layers", "1", "--omega", "10", "--device", "cpu"])
    assert args.steps == 7
    first, second = seeded_siren(args, in_features=3), seeded_siren(args, in_features=3)
    assert first.config.in_features == 3 and first.config.hidden_features == 12 and first.config.hidden_omega == 10
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))

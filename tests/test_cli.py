import pytest
import torch

from hypersiren.across.config import RunConfig
from hypersiren.cli import add_config_options, add_fit_options, config_overrides, program, seeded_siren


def test_every_config_field_is_an_option_and_only_given_ones_override():
    parser = program("test")
    add_config_options(parser)
    args = parser.parse_args(["--train.lr", "3e-4", "--model.encoder_widths=[8,16]", "--device", "cpu"])
    assert config_overrides(args) == ["train.lr=3e-4", "model.encoder_widths=[8,16]"]
    config = RunConfig().override(config_overrides(args))
    assert config.train.lr == 3e-4 and config.model.encoder_widths == [8, 16]
    options = {action.dest for action in parser._actions}
    assert set(RunConfig().keys()) <= options


def test_a_bad_command_line_is_one_error_line(capsys):
    parser = program("test")
    add_config_options(parser)
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

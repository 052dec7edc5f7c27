import pytest
import torch

from hypersiren.cli import add_fit_options, program
from hypersiren.errors import ConfigError
from hypersiren.fit_runs import require_fit_folder, seeded_siren


def test_fit_options_build_the_same_siren_each_time():
    parser = program("test")
    add_fit_options(parser, steps=7)
    args = parser.parse_args(["--out", "x", "--hidden", "12", "--layers", "1", "--omega", "10", "--device", "cpu"])
    assert args.steps == 7
    first, second = seeded_siren(args, in_features=3), seeded_siren(args, in_features=3)
    assert first.config.in_features == 3 and first.config.hidden_features == 12 and first.config.hidden_omega == 10
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))


def test_a_fit_reruns_into_its_own_output_only(tmp_path):
    require_fit_folder(tmp_path / "new", program="fit_image")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text('{"steps": 5}')  # the user's, or another tool's: not the fit's
    with pytest.raises(ConfigError, match="holds a config.json that fit_image did not write"):
        require_fit_folder(tmp_path / "old", program="fit_image")
    (tmp_path / "old" / "config.json").write_text('{"program": "fit_image"}')
    require_fit_folder(tmp_path / "old", program="fit_image")
    with pytest.raises(ConfigError, match="holds the output of fit_image"):
        require_fit_folder(tmp_path / "old", program="fit_sdf")

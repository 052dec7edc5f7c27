"""The series adapter: the UCR archive's series as 1-D signals of the one pipeline."""

from pathlib import Path

import pytest
import torch


def test_osuleaf_series_load_offline_resampled_into_the_model_range():
    """The UCR archive's OSULeaf ships inside aeon: both splits load without a network, one affine map from the
    training range, resampled to the asked length, and a training batch of them is a 1-D batch."""
    pytest.importorskip("aeon")
    from hypersiren.across.series import load_series, ucr_split

    train, test = load_series("OSULeaf", "train", length=128), load_series("OSULeaf", "test", length=128, limit=10)
    assert train.shape == (200, 1, 128) and test.shape == (10, 1, 128) and train.dtype == torch.float32
    assert train.abs().max() <= 1 and 0.85 < train.abs().max()  # the range with its 5% margin, nearly reached
    originals = ucr_split("OSULeaf", "train")
    assert originals.shape == (200, 1, 427)
    native = load_series("OSULeaf", "train", length=427)  # no resampling: the affine map alone
    scale = (native[:, 0, 1:] - native[:, 0, :-1]) / (originals[:, 0, 1:] - originals[:, 0, :-1])
    torch.testing.assert_close(scale[scale.isfinite()].std(), torch.tensor(0.0), atol=1e-3, rtol=0)


def test_a_series_config_must_have_a_series_model():
    from hypersiren.across.config import RunConfig
    from hypersiren.errors import ConfigError

    config = RunConfig.load(Path(__file__).resolve().parents[1] / "train" / "osuleaf.toml")
    assert config.grid == (128,) and config.validate() is config
    with pytest.raises(ConfigError, match=r"data.dataset='ucr' holds 1-D signals of 1 channels.*set them to 1 and 1"):
        config.update({"model.dims": 2}).validate()

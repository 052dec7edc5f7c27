import pytest
import torch

from hypersiren.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hypersiren.siren import Siren


class NotAllowedOnLoad:
    """Pickles fine, but unpickling it would run arbitrary code: weights_only loading must refuse it."""


def make_state(step):
    torch.manual_seed(step)
    return {"model": Siren(2, 4, 1, 1).state_dict(), "step": step, "config": {"lr": 1e-4, "name": "run"}}


def assert_same_state(loaded, expected):
    assert loaded.keys() == expected.keys()
    assert loaded["step"] == expected["step"] and loaded["config"] == expected["config"]
    assert loaded["model"].keys() == expected["model"].keys()
    for name, tensor in expected["model"].items():
        assert torch.equal(loaded["model"][name], tensor)


def test_roundtrip_into_a_new_directory(tmp_path):
    path = tmp_path / "run" / "nested" / "checkpoint.pt"
    state = make_state(1)
    save_checkpoint(state, path)
    assert_same_state(load_checkpoint(path), state)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_overwrite_replaces_the_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(make_state(1), path)
    save_checkpoint(make_state(2), str(path))
    assert_same_state(load_checkpoint(str(path)), make_state(2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(make_state(1), path)

    def crash_halfway(state, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(make_state(2), path)
    monkeypatch.undo()
    assert_same_state(load_checkpoint(path), make_state(1))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_missing_checkpoint_raises_with_the_path(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*missing\.pt.*fix the path"):
        load_checkpoint(tmp_path / "missing.pt")


def test_truncated_checkpoint_raises_checkpoint_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(make_state(1), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is corrupt .*point to an intact one"):
        load_checkpoint(path)


def test_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "payload": NotAllowedOnLoad()}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a hypersiren checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("state", [{"step": 3}, [1, 2]])
def test_checkpoint_without_model_raises(tmp_path, state):
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="holds no 'model' entry"):
        load_checkpoint(path)

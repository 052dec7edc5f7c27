import dataclasses
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hypersiren.across import memory
from hypersiren.across.checkpoint import (
    PRETRAINED,
    export_run,
    load_checkpoint,
    load_run,
    require_resumable,
    save_checkpoint,
)
from hypersiren.across.config import RunConfig
from hypersiren.across.model import HyperSiren
from hypersiren.across.user_images import DetailWeights
from hypersiren.core.siren import Siren
from hypersiren.errors import CheckpointError, ConfigError, MemoryLimitError
from hypersiren.files import remove_stale_temporaries, write_text

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small(tiny_model_config, configured):
    """``small(*overrides)``: a run config of the tiny model, ``section.field=value`` overrides applied."""
    return lambda *overrides: configured(RunConfig(model=tiny_model_config()), *overrides)


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


def test_a_run_folder_that_is_not_there_is_a_path_problem_not_a_run_to_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # away from the repository, as a user's script runs
    message = rf"no run folder at runs/mine \(relative to the working directory {tmp_path}\): check the path"
    with pytest.raises(CheckpointError, match=message):
        load_run("runs/mine")
    message = rf"no run folder at pretrained/celeba32 .*the repository's is {PRETRAINED / 'celeba32'}: check the path"
    with pytest.raises(CheckpointError, match=message):
        load_run("pretrained/celeba32")
    assert load_run(PRETRAINED / "celeba32")[0].data.image_size == 32  # from any working directory


def test_the_clone_in_the_working_directory_does_not_break_imports_and_is_named(tmp_path):
    (tmp_path / "hypersiren").symlink_to(REPO)  # a clone named like the package, seen from the folder above it
    command = [sys.executable, "-c", "from hypersiren import random_context_mask; print(random_context_mask)"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"'import hypersiren' found the clone {tmp_path / 'hypersiren'} in the working directory" in result.stderr


def test_truncated_checkpoint_raises_checkpoint_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(make_state(1), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is corrupt .*point to an intact one"):
        load_checkpoint(path)


def test_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "payload": NotAllowedOnLoad()}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a hypersiren checkpoint") as refusal:
        load_checkpoint(path)
    assert "weights_only" not in str(refusal.value) and "False" not in str(refusal.value)  # never advise unsafe loading
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_with_a_non_finite_weight_is_refused_naming_it(tmp_path, value, small):
    config = small().validate()
    weights = HyperSiren(config.model).state_dict()
    name = next(iter(weights))
    weights[name].view(-1)[0] = value
    torch.save(
        {"model": weights, "step": 1, "config": config.to_dict()}, tmp_path / "checkpoint.pt"
    )  # bypasses the save check
    with pytest.raises(CheckpointError, match=rf"holds NaN or inf in state\['model'\]\['{name}'\].*intact checkpoint"):
        load_run(tmp_path)


def test_a_file_system_error_is_not_called_corruption(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(make_state(1), path)

    def unreadable(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(torch, "load", unreadable)
    with pytest.raises(OSError, match="Input/output error") as error:
        load_checkpoint(path)
    assert not isinstance(error.value, CheckpointError)


@pytest.mark.parametrize("state", [{"step": 3}, [1, 2]])
def test_checkpoint_without_model_raises(tmp_path, state):
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="holds no 'model' entry"):
        load_checkpoint(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_state_is_never_saved(tmp_path, value):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(make_state(1), path)
    poisoned = make_state(2)
    poisoned["model"]["weights.0"][0, 0] = value
    optimizer_state = {"state": {0: {"exp_avg": torch.tensor([1.0, value])}}, "param_groups": [{"lr": 1e-3}]}
    with pytest.raises(CheckpointError, match=r"refusing to save .*\['weights.0'\] and 1 more hold NaN or inf"):
        save_checkpoint(poisoned | {"optimizer": optimizer_state}, path)
    assert_same_state(load_checkpoint(path), make_state(1))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    path.write_text("old\n")

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_text("new\n", path)
    monkeypatch.undo()
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["history.jsonl"]


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    stale = [tmp_path / ".checkpoint.pt.k1ll3d.tmp", tmp_path / ".checkpoint.pt.0ld.tmp"]
    kept = [tmp_path / "checkpoint.pt", tmp_path / ".config.json.x.tmp", tmp_path / "notes.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path / "checkpoint.pt")) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def as_evaluated(config: RunConfig) -> RunConfig:
    """``config`` as load_run gives it to an evaluator: a run folder's saved cache and download are not followed."""
    return dataclasses.replace(config, data=dataclasses.replace(config.data, cache="", download=False))


def write_run(run_dir, config, weights=None):
    weights = HyperSiren(config.model).state_dict() if weights is None else weights
    save_checkpoint({"model": weights, "step": 1, "config": config.to_dict()}, run_dir / "checkpoint.pt")


def test_load_run_rebuilds_the_saved_model(tmp_path, small):
    config = small()
    torch.manual_seed(0)
    model = HyperSiren(config.model)
    write_run(tmp_path, config, model.state_dict())
    loaded_config, loaded = load_run(tmp_path)
    assert loaded_config == as_evaluated(config) and not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_a_tiny_checkpoint_asking_for_a_huge_model_is_refused_before_allocation(tmp_path, small):
    config = small()
    write_run(tmp_path, config)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["config"]["model"] |= {"hyper_hidden_features": 30000, "siren_hidden_features": 256}  # ~6e9 parameters
    torch.save({"model": {}, "step": 1, "config": state["config"]}, tmp_path / "checkpoint.pt")
    assert (tmp_path / "checkpoint.pt").stat().st_size < 4096
    with pytest.raises(CheckpointError, match=r"config saved in .* not usable: the model would have [\d,]+ parameters"):
        load_run(tmp_path)


def test_weights_that_do_not_match_the_saved_config_are_named(tmp_path, small):
    config = small()
    other = HyperSiren(small("model.latent_dim=6").model).state_dict()
    write_run(tmp_path, config, other)
    with pytest.raises(CheckpointError, match=r"weights do not match its config's model .*damaged or was edited"):
        load_run(tmp_path)


def test_an_unusable_saved_config_is_named(tmp_path, small):
    write_run(tmp_path, small())
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["config"]["train"]["batch_size"] = 0
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="config saved in .* not usable: train.batch_size=0 must be >= 1"):
        load_run(tmp_path)


def test_an_exported_run_loads_as_the_run_without_its_optimizer(tmp_path, small):
    config = small().validate()
    torch.manual_seed(0)
    model = HyperSiren(config.model)
    optimizer = torch.optim.Adam(model.parameters())
    model(
        torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.bool), torch.zeros(1, 4, 2)
    ).values.sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7, "config": config.to_dict()}
    save_checkpoint(state, tmp_path / "run" / "checkpoint.pt")
    DetailWeights(densities=(0.5, 2.0), weights=(0.9, 0.1)).save(tmp_path / "run")
    exported = export_run(tmp_path / "run", tmp_path / "shared")
    assert DetailWeights.of_run(tmp_path / "shared") == DetailWeights.of_run(tmp_path / "run")  # fitted to the weights
    assert exported.stat().st_size < 0.5 * (tmp_path / "run" / "checkpoint.pt").stat().st_size
    assert "optimizer" not in torch.load(exported, weights_only=True)
    loaded_config, loaded = load_run(tmp_path / "shared")
    assert loaded_config == as_evaluated(config) and (tmp_path / "shared" / "config.json").is_file()
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_an_export_keeps_a_priors_basis_in_half_precision_and_loads_it_back(tmp_path, small):
    config = small("data.image_size=8", "train.max_context=64", "model.prior_components=6").validate()
    model = HyperSiren(config.model)
    model.fit_prior(torch.rand(40, 3, 8, 8) * 2 - 1)
    state = {"model": model.state_dict(), "step": 1, "config": config.to_dict()}
    save_checkpoint(state, tmp_path / "run" / "checkpoint.pt")
    exported = export_run(tmp_path / "run", tmp_path / "shared")
    stored = torch.load(exported, weights_only=True)["model"]
    assert stored["encoder.prior.basis"].dtype == torch.float16
    assert all(tensor.dtype == torch.float32 for name, tensor in stored.items() if name != "encoder.prior.basis")
    _, loaded = load_run(tmp_path / "shared")
    assert loaded.prior.basis.dtype == torch.float32
    assert torch.equal(loaded.prior.basis, model.prior.basis.half().float())
    image, mask = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) < 0.3
    assert torch.allclose(loaded.prior(image, mask), model.prior(image, mask), atol=1e-2)


def training_state(config, step=3):
    """What train/train.py saves: weights, Adam state after a step, step and config."""
    torch.manual_seed(0)
    model = HyperSiren(config.model)
    optimizer = torch.optim.Adam(model.parameters())
    image, mask = torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.bool)
    model(image, mask, torch.zeros(1, 4, 2)).values.sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "config": config.to_dict()}


def test_a_checkpoint_that_does_not_fit_its_config_is_refused_before_resuming(small):
    config, other = small(), small("model.latent_dim=6")
    state = training_state(config)
    require_resumable(state, config, "checkpoint.pt")  # its own: accepted
    for broken, message in [
        (state | {"optimizer": training_state(other)["optimizer"]}, r"optimizer state does not match its model .*"),
        (state | {"model": training_state(other)["model"]}, r"weights do not match its config's model"),
        (state | {"step": "3"}, r"holds step '3', not a step count"),
        ({key: value for key, value in state.items() if key != "optimizer"}, r"holds no optimizer.*another --out"),
        (state | {"optimizer": {"state": {}, "param_groups": []}}, r"not one group of parameters"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            require_resumable(broken, config, "checkpoint.pt")


@pytest.mark.parametrize(("fine_points", "supersample"), [(512, 2), (0, 1)])
def test_a_run_taught_between_pixel_centres_renders_pixels_as_area_means(tmp_path, fine_points, supersample, small):
    config = small(f"train.fine_points={fine_points}").validate()
    state = {"model": HyperSiren(config.model).state_dict(), "step": 1, "config": config.to_dict()}
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    assert load_run(tmp_path)[1].supersample == supersample


def test_an_export_never_replaces_its_run_and_replaces_another_only_when_asked(tmp_path, small):
    config = small().validate()
    save_checkpoint(training_state(config), tmp_path / "run" / "checkpoint.pt")
    (tmp_path / "other").mkdir()
    save_checkpoint(training_state(config, step=9), tmp_path / "other" / "checkpoint.pt")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for out, replace, message in [
        (tmp_path / "run", False, "is the run itself"),
        (tmp_path / "run" / ".." / "run", True, "is the run itself"),  # asked or not
        (tmp_path / "other", False, "already holds checkpoint.pt .* pass --replace"),
        (tmp_path / "run" / "checkpoint.pt", False, "is a file, not a folder"),
    ]:
        with pytest.raises(ConfigError, match=message):
            export_run(tmp_path / "run", out, replace=replace)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    (tmp_path / "other" / "eval").mkdir()
    (tmp_path / "other" / "eval" / "metrics.json").write_text("{}")  # measured on the weights being replaced
    DetailWeights(densities=(1.0,), weights=(0.5,)).save(tmp_path / "other")
    export_run(tmp_path / "run", tmp_path / "other", replace=True)
    assert not (tmp_path / "other" / "eval").exists() and DetailWeights.of_run(tmp_path / "other") is None
    assert "optimizer" not in load_checkpoint(tmp_path / "other" / "checkpoint.pt")
    assert "optimizer" in load_checkpoint(tmp_path / "run" / "checkpoint.pt")


def test_a_checkpoint_file_given_as_the_run_is_called_a_file(tmp_path):
    save_checkpoint(make_state(1), tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="checkpoint.pt is a file, not a run folder: pass the folder that holds"):
        load_run(tmp_path / "checkpoint.pt")


def test_a_checkpoint_larger_than_the_machines_memory_is_refused_before_loading(tmp_path, monkeypatch):
    save_checkpoint(make_state(1), tmp_path / "checkpoint.pt")
    monkeypatch.setattr(memory, "physical_memory", lambda: 1024)  # bytes: less than the file
    with pytest.raises(MemoryLimitError, match=r"loading .*checkpoint.pt .* needs about .* more than this machine's"):
        load_checkpoint(tmp_path / "checkpoint.pt")

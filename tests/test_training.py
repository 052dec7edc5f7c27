"""hypersiren.across.training: the step never waits on the device, never updates from a non-finite step, compiled
it computes what it computes eagerly, all in compiled graphs, and each torchrun process starts on its own device."""

import copy
import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import pytest
import torch
import torch.distributed as dist

from hypersiren.across.config import RunConfig
from hypersiren.across.data import Batch, ShuffledBatches, recipe_batch
from hypersiren.across.model import HyperSiren
from hypersiren.across.objective import recipe_loss
from hypersiren.across.training import (
    FiniteWatch,
    Gradients,
    gradient_step,
    process_device,
    skip_if_failed,
    start_process,
)
from hypersiren.errors import ConfigError

SIZE, BATCH = 8, 4


@pytest.fixture
def config(tiny_model_config) -> RunConfig:
    config = RunConfig()
    config.model, config.data.image_size = tiny_model_config(), SIZE
    config.train.max_context, config.train.fine_points, config.train.loss = SIZE * SIZE, 6, "log_mse"
    return config


class Run(NamedTuple):
    model: HyperSiren
    optimizer: torch.optim.Optimizer
    watch: FiniteWatch
    batch_of: Callable[[int], Batch]  # step -> its batch
    take_step: Callable[[Batch, int], Gradients]  # train/train.py's step: gradient_step, then the update


def setup(config: RunConfig, device: str = "cpu") -> Run:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2 * BATCH, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator).to(device)
    fine = torch.randint(0, 256, (2 * BATCH, 3, 2 * SIZE, 2 * SIZE), dtype=torch.uint8, generator=generator)
    fine = fine.to(device)
    batches = ShuffledBatches(len(images), BATCH, seed=0, device=device)
    torch.manual_seed(0)
    model = HyperSiren(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    watch = FiniteWatch(torch.device(device))
    take_gradients = gradient_step(model, optimizer, config.train, watch)

    def batch_of(step: int) -> Batch:
        return recipe_batch(config.train, images, batches, step, fine_images=fine)

    def take_step(batch: Batch, step: int) -> Gradients:
        gradients = take_gradients(batch, step)
        optimizer.step()
        return gradients

    return Run(model, optimizer, watch, batch_of, take_step)


def poisoned(batch: Batch) -> Batch:
    return batch._replace(target=torch.full_like(batch.target, float("nan")))


def assert_skipped_and_reported(run: Run, step: int) -> None:
    """A poisoned step ``step`` leaves weights and Adam's moments as they were, and is the first failure reported."""
    weights = copy.deepcopy(run.model.state_dict())
    moments = copy.deepcopy(run.optimizer.state_dict()["state"])
    run.take_step(poisoned(run.batch_of(step)), step)
    assert all(torch.equal(weights[name], value) for name, value in run.model.state_dict().items())  # not updated
    after = run.optimizer.state_dict()["state"]
    assert all(torch.equal(moments[key][name], after[key][name]) for key in moments for name in moments[key])
    failed_step, loss, _ = run.watch.first_failure()
    assert failed_step == step and loss != loss


def test_a_non_finite_step_is_skipped_and_reported_with_its_step_and_values(config):
    run = setup(config)
    run.take_step(run.batch_of(0), step=0)
    assert run.watch.first_failure() is None
    assert_skipped_and_reported(run, step=1)
    weights = copy.deepcopy(run.model.state_dict())
    run.take_step(run.batch_of(2), step=2)  # a later finite step updates again...
    assert not torch.equal(weights["encoder.to_latent.weight"], run.model.state_dict()["encoder.to_latent.weight"])
    assert run.watch.first_failure()[0] == 1  # ...but the first failure stays the one reported


def test_a_finite_step_updates_exactly_as_the_plain_loop_does(config):
    """The watch and the guarded update change no number of a finite step: train/train.py's weights stay bitwise
    those of the loop that read the loss back every step."""
    run = setup(config)
    reference = copy.deepcopy(run.model)
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3, fused=True)
    batch = run.batch_of(3)
    run.take_step(batch, step=3)
    loss, _ = recipe_loss(reference(batch.image, batch.mask, batch.coords), batch, config.train)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), config.train.grad_clip)
    reference_optimizer.step()
    for (name, value), expected in zip(run.model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(value, expected), name


def ops_outside_compiled_graphs(profiler: torch.profiler.profile) -> list[str]:
    """The aten ops a profiled call ran outside the graphs torch.compile made (each one launch): those called from
    Python or by the autograd engine, not from within another op or a compiled graph."""
    compiled_graph = ("## Call CompiledFxGraph", "CompiledFunction")  # inductor's graphs, forward and backward
    outside = []
    for event in profiler.events():
        if event.name.startswith("aten::"):
            caller = event.cpu_parent
            while caller is not None and not caller.name.startswith(("aten::", *compiled_graph)):
                caller = caller.cpu_parent
            outside += [] if caller else [event.name]
    return outside


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile needs a C++ compiler on the CPU"
)
def test_the_compiled_step_equals_the_eager_one_runs_no_op_of_it_outside_compiled_graphs_and_skips_as_it_does(config):
    eager = setup(config)
    run = setup(copy.deepcopy(config).update({"train.compile": "default"}))
    for step in range(3):
        batch = eager.batch_of(step)
        expected, got = eager.take_step(batch, step), run.take_step(batch, step)
        torch.testing.assert_close(got.loss, expected.loss, rtol=1e-4, atol=1e-5)
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(value, eager.model.state_dict()[name], rtol=1e-3, atol=1e-4, msg=name)
    batch = run.batch_of(3)
    with torch.profiler.profile() as profiler:
        run.take_step(batch, step=3)
    engine = {"aten::ones_like", "aten::detach", "aten::new_empty_strided", "aten::copy_"}  # seed, gradients handed on
    update = {"aten::to", "aten::_foreach_add_", "aten::_fused_adam_", "aten::_foreach_sub_"}  # found_inf's too
    assert set(ops_outside_compiled_graphs(profiler)) <= engine | update  # no op of forward, loss, clip or watch
    assert_skipped_and_reported(run, step=4)


def test_an_optimizer_that_cannot_skip_on_the_device_is_refused(config):
    with pytest.raises(ValueError, match="fused"):
        skip_if_failed(torch.optim.Adam(setup(config).model.parameters()), torch.zeros(()))


def test_steps_between_logs_read_no_value_back_to_the_host(config, monkeypatch):
    """The CPU stand-in for CUDA's sync check below: every way Python reads a tensor's value is refused."""
    run = setup(config)
    run.take_step(run.batch_of(0), step=0)  # lazy optimizer state made

    def refuse(tensor, *args, **kwargs):
        raise AssertionError(f"a training step read a {tuple(tensor.shape)} tensor back to the host")

    with monkeypatch.context() as patched:
        for reader in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
            patched.setattr(torch.Tensor, reader, refuse)
        for step in range(1, 2 * BATCH):  # across an epoch boundary: a new permutation is drawn
            run.take_step(run.batch_of(step), step=step)
    assert run.watch.first_failure() is None  # read at a log step


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the host-sync check runs on a GPU only")
def test_steps_between_logs_never_wait_on_the_gpu(config):
    run = setup(config, device="cuda")
    run.take_step(run.batch_of(0), step=0)  # warm-up: lazy state, kernels loaded
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 2 * BATCH):  # across an epoch boundary: a new permutation is drawn
            run.take_step(run.batch_of(step), step=step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert run.watch.first_failure() is None


def test_one_process_trains_on_the_device_given_and_a_torchrun_rank_on_the_gpu_of_its_local_rank():
    assert process_device("cuda:1", local_rank=None) == torch.device("cuda:1")
    assert process_device("cuda", local_rank=1) == torch.device("cuda:1")
    assert process_device("cpu", local_rank=1) == torch.device("cpu")
    with pytest.raises(ConfigError, match="give --device cuda "):  # every rank would take the same GPU
        process_device("cuda:1", local_rank=0)


def start_rank(rank: int, port: int, out: Path) -> None:
    """One of two torchrun-like processes (spawned): starts as train/train.py does, first as on CUDA (the CUDA calls
    recorded, the group itself gloo's), then on the CPU for real, and writes what it saw to ``out/RANK.json``."""
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank)}
    calls, gloo = [], dist.init_process_group

    def init_process_group(backend: str, device_id: torch.device | None) -> None:
        calls.append(["init_process_group", backend, str(device_id)])
        gloo("gloo")

    sums = []
    for device in ("cuda", "cpu"):
        with (
            mock.patch.object(torch.cuda, "set_device", lambda device: calls.append(["set_device", str(device)])),
            mock.patch.object(dist, "init_process_group", init_process_group if device == "cuda" else gloo),
        ):
            start_process(process_device(device, local_rank=rank), distributed=True)
        total = torch.tensor(rank + 1)
        dist.all_reduce(total)  # the group joins both processes
        sums.append(int(total))
        dist.destroy_process_group()
    (out / f"{rank}.json").write_text(json.dumps({"calls": calls, "sums": sums}))


def test_each_torchrun_rank_makes_its_gpu_current_before_the_process_group_starts_bound_to_it(tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    torch.multiprocessing.spawn(start_rank, args=(port, tmp_path), nprocs=2)
    for rank in range(2):
        seen = json.loads((tmp_path / f"{rank}.json").read_text())
        gpu = f"cuda:{rank}"
        assert seen["calls"] == [["set_device", gpu], ["init_process_group", "nccl", gpu]]  # the CPU: neither
        assert seen["sums"] == [3, 3]

"""hypersiren.across.training: the step never waits on the device, never updates from a non-finite step, and
compiled it computes what it computes eagerly."""

import copy
import shutil
from contextlib import nullcontext

import pytest
import torch

from hypersiren.across.config import RunConfig
from hypersiren.across.data import ShuffledBatches, recipe_batch
from hypersiren.across.model import HyperSiren
from hypersiren.across.objective import recipe_loss
from hypersiren.across.training import FiniteWatch, compiled, compute_gradients, skip_if_failed

SIZE, BATCH = 8, 4


@pytest.fixture
def config(tiny_model_config) -> RunConfig:
    config = RunConfig()
    config.model, config.data.image_size = tiny_model_config(), SIZE
    config.train.max_context, config.train.fine_points, config.train.loss = SIZE * SIZE, 6, "log_mse"
    return config


def setup(config: RunConfig, device: str = "cpu"):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2 * BATCH, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator).to(device)
    fine = torch.randint(0, 256, (2 * BATCH, 3, 2 * SIZE, 2 * SIZE), dtype=torch.uint8, generator=generator)
    batches = ShuffledBatches(len(images), BATCH, seed=0, device=device)
    torch.manual_seed(0)
    model = HyperSiren(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    return model, optimizer, lambda step: recipe_batch(config.train, images, batches, step, fine_images=fine.to(device))


def take_step(model, optimizer, batch, config, watch, step, forward=None):
    parameters = list(model.parameters())
    gradients = compute_gradients(model if forward is None else forward, parameters, batch, config.train, nullcontext())
    skip_if_failed(optimizer, watch.record(step, gradients.loss, gradients.grad_norm))
    optimizer.step()
    return gradients


def test_a_non_finite_step_is_skipped_and_reported_with_its_step_and_values(config):
    model, optimizer, batch_of = setup(config)
    watch = FiniteWatch(torch.device("cpu"))
    take_step(model, optimizer, batch_of(0), config, watch, step=0)
    assert watch.first_failure() is None
    weights = copy.deepcopy(model.state_dict())
    moments = copy.deepcopy(optimizer.state_dict()["state"])
    poisoned = batch_of(1)._replace(target=torch.full_like(batch_of(1).target, float("nan")))
    take_step(model, optimizer, poisoned, config, watch, step=1)
    assert all(torch.equal(weights[name], value) for name, value in model.state_dict().items())  # not updated
    after = optimizer.state_dict()["state"]
    assert all(torch.equal(moments[key][name], after[key][name]) for key in moments for name in moments[key])
    take_step(model, optimizer, batch_of(2), config, watch, step=2)  # a later finite step updates again...
    assert not torch.equal(weights["encoder.to_latent.weight"], model.state_dict()["encoder.to_latent.weight"])
    step, loss, _ = watch.first_failure()  # ...but the first failure stays the one reported
    assert step == 1 and loss != loss


def test_a_finite_step_updates_exactly_as_the_plain_loop_does(config):
    """The watch and the guarded update change no number of a finite step: train/train.py's weights stay bitwise
    those of the loop that read the loss back every step."""
    model, optimizer, batch_of = setup(config)
    reference = copy.deepcopy(model)
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3, fused=True)
    batch = batch_of(3)
    take_step(model, optimizer, batch, config, FiniteWatch(torch.device("cpu")), step=3)
    loss, _ = recipe_loss(reference(batch.image, batch.mask, batch.coords), batch, config.train)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), config.train.grad_clip)
    reference_optimizer.step()
    for (name, value), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(value, expected), name


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile needs a C++ compiler on the CPU"
)
def test_the_compiled_step_equals_the_eager_one(config):
    eager, eager_optimizer, batch_of = setup(config)
    model, optimizer, _ = setup(config)
    forward = compiled(model, mode="default")
    for step in range(3):
        batch = batch_of(step)
        expected = take_step(eager, eager_optimizer, batch, config, FiniteWatch(torch.device("cpu")), step)
        got = take_step(model, optimizer, batch, config, FiniteWatch(torch.device("cpu")), step, forward=forward)
        torch.testing.assert_close(got.loss, expected.loss, rtol=1e-4, atol=1e-5)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, eager.state_dict()[name], rtol=1e-3, atol=1e-4, msg=name)


def test_an_optimizer_that_cannot_skip_on_the_device_is_refused(config):
    model, _, _ = setup(config)
    with pytest.raises(ValueError, match="fused"):
        skip_if_failed(torch.optim.Adam(model.parameters()), torch.zeros(()))


def test_steps_between_logs_read_no_value_back_to_the_host(config, monkeypatch):
    """The CPU stand-in for CUDA's sync check below: every way Python reads a tensor's value is refused."""
    model, optimizer, batch_of = setup(config)
    watch = FiniteWatch(torch.device("cpu"))
    take_step(model, optimizer, batch_of(0), config, watch, step=0)  # lazy optimizer state made

    def refuse(tensor, *args, **kwargs):
        raise AssertionError(f"a training step read a {tuple(tensor.shape)} tensor back to the host")

    with monkeypatch.context() as patched:
        for reader in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
            patched.setattr(torch.Tensor, reader, refuse)
        for step in range(1, 2 * BATCH):  # across an epoch boundary: a new permutation is drawn
            take_step(model, optimizer, batch_of(step), config, watch, step=step)
    assert watch.first_failure() is None  # read at a log step


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the host-sync check runs on a GPU only")
def test_steps_between_logs_never_wait_on_the_gpu(config):
    model, optimizer, batch_of = setup(config, device="cuda")
    watch = FiniteWatch(torch.device("cuda"))
    take_step(model, optimizer, batch_of(0), config, watch, step=0)  # warm-up: lazy state, kernels loaded
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 2 * BATCH):  # across an epoch boundary: a new permutation is drawn
            take_step(model, optimizer, batch_of(step), config, watch, step=step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert watch.first_failure() is None

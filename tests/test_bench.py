"""eval/bench.py: its reference computes hypersiren's function exactly, and every ablation computes the same
numbers with one trick swapped for plain code, so each timing compares like with like."""

import json
import re

import pytest
import torch

from hypersiren.across import memory
from hypersiren.across.model import HyperSiren
from hypersiren.errors import ConfigError, MemoryLimitError


@pytest.fixture(scope="module")
def bench(load_program):
    return load_program("eval/bench.py")


@pytest.fixture
def tiny(tiny_model_config):
    # Every SIREN layer a different shape, so a wrong split or layout cannot line up by accident; "conv" is the
    # paper design, which the reference re-implements.
    return tiny_model_config(encoder="conv", siren_hidden_features=6, siren_hidden_layers=2, hyper_hidden_features=10)


@pytest.fixture
def model(tiny):
    torch.manual_seed(0)
    return HyperSiren(tiny)


@pytest.fixture
def batch(bench, tiny):
    return bench.make_batch(tiny, batch_size=3, size=8, device="cpu", seed=0)


def test_reference_has_the_same_loss_and_encoder_gradient(bench, model, batch):
    reference = bench.ReferenceModel(model)
    expected = bench.loss_and_encoder_gradient(model, batch)
    assert bench.assert_same_numbers(expected, bench.loss_and_encoder_gradient(reference, batch), "reference") < 1e-5
    with torch.no_grad():
        torch.testing.assert_close(reference(*batch[:3]).values, model(*batch[:3]).values)


def test_reference_is_the_per_tensor_design_with_its_own_copies(bench, model):
    reference = bench.ReferenceModel(model)
    assert len(reference.nets) == 2 * len(model.config.siren.layer_shapes)
    trunk_weights = {id(net[0].weight) for net in reference.nets}
    assert len(trunk_weights) == len(reference.nets) and id(model.decoder.hypernet.trunk[0].weight) not in trunk_weights
    assert reference.encoder is not model.encoder


def test_a_head_block_left_in_hypersiren_layout_is_caught(bench, model, batch):
    reference = bench.ReferenceModel(model)
    layer = 1  # a 6x6 hidden layer: the wrong layout still has the right shape
    with torch.no_grad():
        reference.nets[2 * layer][-1].weight.copy_(
            torch.split(model.decoder.hypernet.head.weight, model.decoder.hypernet.sizes)[2]
        )
    expected = bench.loss_and_encoder_gradient(model, batch)
    with pytest.raises(AssertionError, match="other numbers"):
        bench.assert_same_numbers(expected, bench.loss_and_encoder_gradient(reference, batch), "reference")


@pytest.mark.parametrize("trick", ["custom sine layer", "chunked in-place cos", "omega inside the GEMM"])
def test_each_ablation_swaps_its_trick_for_plain_code_with_the_same_numbers(bench, model, batch, trick, monkeypatch):
    calls = []
    module, attribute, _ = bench.TRICKS[trick]
    original = getattr(module, attribute)
    if trick == "custom sine layer":
        monkeypatch.setattr(
            module, attribute, type("Spy", (), {"apply": lambda *a: calls.append(1) or original.apply(*a)})
        )
    else:
        monkeypatch.setattr(module, attribute, lambda *a, **k: calls.append(1) or original(*a, **k))
    expected = bench.loss_and_encoder_gradient(model, batch)
    assert calls, f"{trick} is not on the training step's path"
    calls.clear()
    with bench.without(trick):
        got = bench.loss_and_encoder_gradient(model, batch)
    assert not calls, f"without({trick!r}) still ran it"
    bench.assert_same_numbers(expected, got, trick)
    assert getattr(module, attribute) is not original  # the spy is back: without() restored what it replaced


def test_interleaved_timing_and_paired_ratio(bench):
    ticks = []
    samples = bench.time_interleaved({"a": lambda: ticks.append("a"), "b": lambda: ticks.append("b")}, "cpu", 3, 2)
    assert ticks[:2] == ["a", "b"] and ticks[2:6] == ["a", "a", "b", "b"] and ticks[6:10] == ["b", "b", "a", "a"]
    assert all(len(times) == 3 for times in samples.values())
    assert bench.paired_ratio([2.0, 4.0, 30.0], [1.0, 2.0, 3.0]) == 2.0  # the median ignores a one-round outlier


def test_step_flops_count_the_gemms(bench, model, batch, tiny):
    flops = bench.step_flops(model, batch)
    siren_forward = sum(2 * 3 * 64 * fan_in * fan_out for fan_in, fan_out in tiny.siren.layer_shapes)
    assert flops > 2 * siren_forward  # forward and backward of the SIREN at least
    assert all(parameter.grad is None for parameter in model.parameters())  # counting leaves nothing behind


def test_a_preset_step_trains_on_its_presets_query_and_fine_points(bench, tiny, monkeypatch):
    config = bench.RunConfig()
    config.model, config.data.image_size = tiny, 8
    config.train.query_points, config.train.fine_points, config.train.max_context = 20, 6, 64
    seen = []
    forward = HyperSiren.forward
    monkeypatch.setattr(HyperSiren, "forward", lambda self, *args: seen.append(args[2].shape) or forward(self, *args))
    model, step = bench.preset_step(config, device="cpu", batch_size=3)
    before = [parameter.clone() for parameter in model.parameters()]
    step()
    step()
    assert seen == [(3, 26, 2)] * 2  # 20 query points and 6 fine ones per image
    assert all(not torch.equal(old, new) for old, new in zip(before, model.parameters()))


def test_a_preset_step_is_the_training_loops_step(bench, tiny, monkeypatch):
    """The bench times train/train.py's step, the finiteness watch and the guarded update included."""
    from hypersiren.across import training

    config = bench.RunConfig()
    config.model, config.data.image_size, config.train.max_context = tiny, 8, 64
    calls = []
    for name in ("compute_gradients", "skip_if_failed"):
        original = getattr(training, name)
        monkeypatch.setattr(
            training, name, lambda *a, _original=original, _name=name, **k: calls.append(_name) or _original(*a, **k)
        )
    _, step = bench.preset_step(config, device="cpu", batch_size=3)
    step()
    assert calls == ["compute_gradients", "skip_if_failed"]


def test_mode_rows_time_each_mode_against_eager(bench, tiny, monkeypatch):
    from hypersiren.across import training

    config = bench.RunConfig()
    config.model, config.data.image_size, config.train.max_context = tiny, 8, 64
    compiled = []
    # no compile time here
    monkeypatch.setattr(training, "compiled", lambda function, mode: compiled.append(mode) or function)
    rows = bench.bench_modes({"tiny": config}, "cpu", batch_size=3, rounds=1, gemm_rate=1e9, modes=bench.CPU_MODES)
    assert [row["mode"] for row in rows] == list(bench.CPU_MODES) and set(compiled) == {"off", "default"}
    assert rows[0][bench.VS_EAGER] == 1.0 and all(row["% of fp32 GEMM"] > 0 for row in rows)


def test_a_training_step_contender_is_a_step_of_adam(bench, model, batch):
    step = bench.training_step(model, batch)
    before = [parameter.clone() for parameter in model.parameters()]
    step()
    assert all(not torch.equal(old, new) for old, new in zip(before, model.parameters()))


def test_a_benchmark_of_another_setup_or_fewer_rounds_replaces_none_unless_asked(bench, tmp_path):
    path = tmp_path / "bench_cpu.json"
    saved = {"device": "CPU (Xeon)", "threads": 2, "batch_size": 32, "rounds": 9, "gemm_size": 2048}
    path.write_text(json.dumps(saved))
    for change, phrase in [
        ({"threads": 1}, "threads 2, this one 1"),
        ({"device": "CPU (Apple M2)"}, "device 'CPU (Xeon)'"),
        ({"batch_size": 4}, "batch_size 32, this one 4"),
        ({"rounds": 1}, "9 rounds, this one 1"),
    ]:
        with pytest.raises(ConfigError, match=f"another setup .*{re.escape(phrase)}.*--replace"):
            bench.require_same_setup(path, saved | change)
    bench.require_same_setup(path, saved | {"rounds": 20})  # more rounds of the same setup: replaced
    path.write_text(json.dumps({"device": "CPU (Xeon)", "threads": 2}))  # written before runs recorded their setup
    bench.require_same_setup(path, saved | {"batch_size": 8, "rounds": 1})


def test_a_batch_too_large_for_memory_is_refused_before_timing(bench, monkeypatch):
    bench.require_bench_memory("cpu", batch_size=1)
    monkeypatch.setattr(memory, "physical_memory", lambda: 2**30)
    with pytest.raises(MemoryLimitError, match=r"a training step of 1024 signals of \d+x\d+ .* lower --batch-size"):
        bench.require_bench_memory("cpu", batch_size=1024)

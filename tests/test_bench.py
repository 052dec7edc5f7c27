"""eval/bench.py: its reference (the original per-tensor design) computes hypersiren's function exactly,
so the benchmark compares like with like."""

import pytest
import torch
from einops import rearrange

from hypersiren.data import DatasetError
from hypersiren.functional import render
from hypersiren.model import ModelConfig
from hypersiren.siren import init_siren_params

# Small, and every SIREN layer a different shape, so a wrong split or layout cannot line up by accident.
TINY = ModelConfig(
    encoder="conv",  # the paper design, which the reference re-implements
    latent_dim=8,
    encoder_widths=[4, 8],
    siren_hidden_features=6,
    siren_hidden_layers=2,
    hyper_hidden_features=10,
    hyper_hidden_layers=1,
)


@pytest.fixture(scope="module")
def bench(load_program):
    return load_program("eval/bench.py")


@pytest.fixture
def models(bench):
    return bench.build_models(TINY, "cpu", seed=0)


@pytest.fixture
def batch(bench):
    return bench.make_batch(TINY, batch_size=3, size=8, device="cpu", seed=0)


def test_reference_has_the_same_loss_and_encoder_gradient(bench, models, batch):
    model, reference = models
    check = bench.compare_numerics(model, reference, batch)
    bench.assert_equal_numerics(check)
    assert check.max_encoder_grad_error < 1e-5
    with torch.no_grad():
        expected = model(batch.image, batch.mask, batch.coords).values
        torch.testing.assert_close(reference(batch.image, batch.mask, batch.coords).values, expected)


def test_reference_is_the_per_tensor_design_with_its_own_copies(models):
    model, reference = models
    num_tensors = 2 * len(model.config.siren.layer_shapes)
    assert len(reference.hypernet.nets) == num_tensors
    trunk_weights = {id(net[0].weight) for net in reference.hypernet.nets}
    assert len(trunk_weights) == num_tensors and id(model.hypernet.trunk[0].weight) not in trunk_weights
    assert reference.encoder is not model.encoder
    for copied, original in zip(reference.encoder.parameters(), model.encoder.parameters(), strict=True):
        assert torch.equal(copied, original)


def test_a_head_block_left_in_hypersiren_layout_is_caught(bench, models, batch):
    model, reference = models
    layer = 1  # a 6x6 hidden layer: the wrong layout still has the right shape
    rows = torch.split(model.hypernet.head.weight, model.hypernet.sizes)[2 * layer]
    with torch.no_grad():
        reference.hypernet.nets[2 * layer][-1].weight.copy_(rows)  # (in, out) order, not (out, in)
    with pytest.raises(AssertionError, match="differ"):
        bench.assert_equal_numerics(bench.compare_numerics(model, reference, batch))


def test_a_per_tensor_trunk_that_is_not_a_copy_is_caught(bench, models, batch):
    model, reference = models
    with torch.no_grad():
        reference.hypernet.nets[-1][0].weight.mul_(1.01)  # the trunk feeding the output bias
    with pytest.raises(AssertionError, match="differ"):
        bench.assert_equal_numerics(bench.compare_numerics(model, reference, batch))


def test_reference_render_is_batch_linear_with_transposed_weights(bench):
    params = init_siren_params(TINY.siren, batch_size=2, generator=torch.Generator().manual_seed(0))
    coords = torch.rand(2, 10, 2) * 2 - 1
    reference_params = [bench.ReferenceLayer(rearrange(w, "b i o -> b o i"), b) for w, b in params]
    torch.testing.assert_close(bench.reference_render(reference_params, coords, TINY.omega), render(params, coords))


@pytest.mark.parametrize("workload", ["train", "inference"])
def test_every_contender_runs(bench, models, batch, workload):
    model, reference = models
    for design in bench.DESIGNS[workload]:
        bench.make_contender(design, workload, model, reference, batch, bench.BenchConfig())()


def test_transient_peak_counts_the_tensors_alive_together(bench):
    with bench.transient_peak(torch.device("cpu")) as peak:
        first = torch.ones(1_000_000)  # 4 MB
        second = first * 2  # 4 MB more while first lives
        del first, second
        torch.ones(500_000)  # 2 MB once both are freed: not a new peak
    assert 8_000_000 <= peak["bytes"] < 8_100_000


def test_data_workload_times_the_training_loader_on_real_images(bench, celeba_root):
    images = bench.load_images(bench.DataConfig(root=str(celeba_root), image_size=8), "train", limit=16)
    model, _ = bench.build_models(TINY, "cpu", seed=0)
    config = bench.BenchConfig(warmup=0, rounds=2, steps_per_round=1)
    before = [p.detach().clone() for p in model.parameters()]
    figures = bench._data_pipeline(model, images, config, batch_size=4)
    assert figures["images"] == 16 and figures["throughput_ratio"] > 0 and figures["load_seconds_per_batch"] > 0
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters()))  # real training steps ran


def test_missing_dataset_fails_before_any_timing(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "time_interleaved", lambda *args: pytest.fail("timed before checking the data"))
    config = bench.BenchConfig(data_root=str(tmp_path), workloads=["train", "data"])
    with pytest.raises(DatasetError, match="CelebA not found"):
        bench.run_benchmark(config, TINY)

"""The data-driven baselines: the Gaussian conditional mean against its textbook formula, neighbours against a loop,
settings chosen on a training fold, and the model's prior carried by its checkpoint."""

import pytest
import torch

from hypersiren.across.config import ModelConfig, RunConfig
from hypersiren.across.context import random_context_mask
from hypersiren.across.encoders import pull_push_fill
from hypersiren.across.evaluation import evaluate_inpainting, fit_data_priors
from hypersiren.across.model import HyperSiren
from hypersiren.across.priors import GaussianPrior, NearestNeighbours, principal_spectrum, select_priors
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_unit_range
from hypersiren.errors import ConfigError


def low_rank_signals(count: int, shape: tuple[int, ...], rank: int, seed: int = 0) -> torch.Tensor:
    """Signals in [-1, 1] from a Gaussian of ``rank`` directions (the same for every seed) plus a little noise."""
    dims = torch.Size(shape).numel()
    directions = torch.randn(rank, dims, generator=torch.Generator().manual_seed(1234))
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(count, rank, generator=generator) * torch.linspace(1.0, 0.3, rank)
    signals = codes @ directions / dims**0.5 + 0.02 * torch.randn(count, dims, generator=generator)
    return (signals / 4).clamp(-1, 1).view(count, *shape)


def textbook_conditional_mean(prior: GaussianPrior, signal: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean_m + Σ_mo Σ_oo⁻¹ (x_o - mean_o) with the prior's full covariance Σ = V S² Vᵀ + σ² I, one signal at a time."""
    covariance = (prior.basis * prior.scales.square()) @ prior.basis.T + prior.noise * torch.eye(prior.mean.numel())
    completed = []
    for one, seen in zip(signal.flatten(1).double(), mask.flatten(2).expand_as(signal.flatten(2)).flatten(1)):
        observed, missing = seen.nonzero().flatten(), (~seen).nonzero().flatten()
        sigma = covariance.double()
        gain = sigma[missing][:, observed] @ torch.linalg.inv(sigma[observed][:, observed])
        values = one.clone()
        values[missing] = prior.mean.double()[missing] + gain @ (one[observed] - prior.mean.double()[observed])
        completed.append(values)
    return torch.stack(completed).view_as(signal).float()


@pytest.mark.parametrize("num_context", [3, 40])  # fewer observed than missing points, and more: both Gram paths
def test_gaussian_completion_is_the_textbook_conditional_mean(num_context):
    train = low_rank_signals(200, (2, 7, 7), rank=6)
    prior = GaussianPrior.fit(train, components=10, noise_scale=2.0)
    signal = low_rank_signals(5, (2, 7, 7), rank=6, seed=1)
    mask = random_context_mask(5, (7, 7), num_context, generator=torch.Generator().manual_seed(2))
    expected = textbook_conditional_mean(prior, signal, mask)
    assert torch.allclose(prior(signal, mask), expected, atol=1e-4)
    many = prior.complete_many(signal, mask, [(10, 2.0), (4, 1.0)])
    assert torch.allclose(many[0], expected, atol=1e-4)
    smaller = GaussianPrior.fit(train, components=4)
    assert torch.allclose(many[1], textbook_conditional_mean(smaller, signal, mask), atol=1e-3)
    assert torch.equal(prior(signal, mask)[mask.expand_as(signal)], signal[mask.expand_as(signal)])


def test_gaussian_prior_recovers_low_rank_signals_far_better_than_their_mean():
    train, held_out = low_rank_signals(400, (1, 64), rank=4), low_rank_signals(50, (1, 64), rank=4, seed=3)
    mask = random_context_mask(50, (64,), 12, generator=torch.Generator().manual_seed(0))
    completed = GaussianPrior.fit(train, components=8)(held_out, mask)
    mean = train.mean(dim=0).expand_as(held_out)
    error, baseline = (completed - held_out).square().mean(), (mean - held_out).square().mean()
    assert error < 0.05 * baseline


def test_spectrum_variances_are_the_data_covariance_eigenvalues():
    train = low_rank_signals(300, (1, 32), rank=5)
    spectrum = principal_spectrum(train, components=5)
    centred = train.flatten(1) - train.flatten(1).mean(dim=0)
    eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / len(train)).flip(0)
    assert torch.allclose(spectrum.variances, eigenvalues[:5], rtol=1e-3)
    assert spectrum.total == pytest.approx(float(eigenvalues.sum()), rel=1e-4)
    with pytest.raises(ValueError, match="use fewer components"):
        principal_spectrum(train[:10], components=20)


def test_neighbours_average_the_closest_training_signals_on_the_observed_points():
    train = torch.rand(30, 1, 5, 5) * 2 - 1
    query = train[[4, 9]].clone()
    mask = random_context_mask(2, (5, 5), 6, generator=torch.Generator().manual_seed(0))
    query = torch.where(mask, query, torch.full_like(query, float("nan")))  # missing points may hold anything
    assert torch.equal(NearestNeighbours(train, k=1)(query, mask), train[[4, 9]].where(mask, train[[4, 9]]))
    distances = ((train.unsqueeze(0) - query.nan_to_num().unsqueeze(1)).square() * mask.unsqueeze(1)).flatten(2)
    nearest = distances.sum(-1).topk(3, largest=False).indices  # (2, 3), by brute force
    expected = torch.where(mask, query, train[nearest].mean(dim=1))
    assert torch.allclose(NearestNeighbours(train, k=3)(query, mask), expected, atol=1e-6)


def test_selection_scores_candidates_on_the_training_fold_only():
    train = low_rank_signals(220, (1, 48), rank=3)
    masks = []

    def make_masks(setting: str, count: int) -> torch.Tensor:
        masks.append(count)
        return random_context_mask(count, (48,), int(setting), generator=torch.Generator().manual_seed(1))

    choices = select_priors(train, ("5", "40"), make_masks)
    assert masks == [22, 22]  # the last 10% of the training split, nothing else
    assert set(choices) == {"5", "40"}
    assert choices["5"]["gaussian"]["components"] == 8  # the smallest candidate holding the data's 3 directions
    fold, fold_mask = train[-22:], make_masks("5", 22)

    def fold_psnr(components: int, noise_scale: float) -> float:
        completed = GaussianPrior.fit(train[:-22], components, noise_scale)(fold, fold_mask)
        return float(psnr(to_unit_range(completed), to_unit_range(fold)).mean())

    chosen = fold_psnr(8, choices["5"]["gaussian"]["noise_scale"])
    assert chosen == pytest.approx(choices["5"]["gaussian"]["fold_psnr"], abs=0.05)  # a basis cut from a larger one
    assert chosen >= max(fold_psnr(32, 1.0), fold_psnr(8, 0.1), fold_psnr(8, 30.0))


def test_evaluation_scores_the_priors_on_the_same_masks():
    train = (low_rank_signals(120, (3, 8, 8), rank=5) * 127.5 + 127.5).round().to(torch.uint8)
    held_out = (low_rank_signals(6, (3, 8, 8), rank=5, seed=4) * 127.5 + 127.5).round().to(torch.uint8)
    priors = fit_data_priors(train, ("6", "full"))
    assert set(priors.choices) == {"6"}  # every point observed: nothing to choose
    model = HyperSiren(ModelConfig(latent_dim=8, encoder_widths=[8, 8], local_features=8)).eval()
    results = evaluate_inpainting(model, held_out, None, settings=("6", "full"), priors=priors)
    assert results["6"]["gaussian"]["psnr"] > results["6"]["nearest"]["psnr"]
    assert results["full"]["gaussian"]["psnr"] is None


def test_a_model_with_a_prior_starts_from_it_and_keeps_it_in_its_weights():
    config = ModelConfig(latent_dim=8, encoder_widths=[8, 8], local_features=8, prior_components=6, prior_size=8)
    train = low_rank_signals(100, (3, 8, 8), rank=4)
    model = HyperSiren(config)
    model.fit_prior(train)
    image, mask = train[:3], random_context_mask(3, (8, 8), 10)
    local = model.encode(image, mask).local_grid
    fill = pull_push_fill(image, mask, model.encoder.fill_levels)[-1][:, :-1]
    weight = model.encoder.gate(mask)  # the decoder's starting guess: the prior's and the fill's, mixed
    assert torch.allclose(local[:, -3:], weight * model.encoder.prior(image, mask) + (1 - weight) * fill)
    sparse, dense = random_context_mask(1, (8, 8), 1), random_context_mask(1, (8, 8), 63)
    assert model.encoder.gate(sparse).item() > 0.9 and model.encoder.gate(dense).item() < 0.2
    again = HyperSiren(config)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.inpaint(image, mask), model.inpaint(image, mask))
    with pytest.raises(ValueError, match="prior_size"):
        model.fit_prior(torch.zeros(10, 3, 16, 16))


def test_config_refuses_a_prior_of_another_grid():
    config = RunConfig()
    config.model.prior_components, config.model.prior_size = 64, 16
    with pytest.raises(ConfigError, match="model.prior_size=16 must be data.image_size=32"):
        config.validate()
    config.model.prior_size = 32
    config.validate()
    config.model.encoder = "conv"
    with pytest.raises(ConfigError, match="needs model.encoder='unet'"):
        config.validate()


def test_completions_are_the_same_taken_a_few_signals_at_a_time(monkeypatch):
    import hypersiren.across.priors as priors

    train, signal = low_rank_signals(80, (1, 6, 6), rank=3), low_rank_signals(7, (1, 6, 6), rank=3, seed=5)
    mask = random_context_mask(7, (6, 6), 9, generator=torch.Generator().manual_seed(3))
    gaussian, neighbours = GaussianPrior.fit(train, components=8), NearestNeighbours(train, k=3)
    whole = gaussian.complete_many(signal, mask, [(8, 1.0)])[0], neighbours(signal, mask)
    monkeypatch.setattr(priors, "GATHER_BYTES", 3 * 36 * 8 * 4)  # three signals' rows at a time
    assert torch.allclose(gaussian.complete_many(signal, mask, [(8, 1.0)])[0], whole[0], atol=1e-6)
    assert torch.allclose(neighbours(signal, mask), whole[1])


def test_the_spectrum_is_the_same_every_time_and_leaves_the_callers_random_stream_alone():
    signals = torch.randn(40, 1, 6, 6)
    torch.manual_seed(5)
    first = principal_spectrum(signals, components=8)
    after_first = torch.rand(3)
    torch.manual_seed(6)  # another caller's seed
    second = principal_spectrum(signals, components=8)
    assert torch.equal(first.directions, second.directions) and torch.equal(first.variances, second.variances)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), after_first)  # as if no spectrum had been taken

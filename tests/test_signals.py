"""One pipeline for signals of any dimension: series (1-D), images (2-D) and volumes (3-D)."""

import math

import pytest
import torch
from torch import Tensor

from hypersiren.across.baseline_fill import CLASSICAL_FILLS, classical_fill
from hypersiren.across.config import ModelConfig
from hypersiren.across.context import first_half_mask, protocol_settings, random_context_mask
from hypersiren.across.data import ShuffledBatches, training_batch
from hypersiren.across.encoders import pull_push_fill
from hypersiren.across.evaluation import CLASSICAL_METHODS, evaluate_inpainting, mean_psnrs
from hypersiren.across.model import HyperSiren
from hypersiren.across.objective import hypernetwork_loss
from hypersiren.core.coordinates import cell_centres

GRIDS = {1: (32,), 2: (12, 10), 3: (6, 8, 4)}
TINY = dict(latent_dim=16, encoder_widths=[8, 16], local_features=8, siren_hidden_features=16, hyper_hidden_features=16)


def smooth_signals(count: int, grid: tuple[int, ...], channels: int = 1, seed: int = 0) -> Tensor:
    """``(count, channels, *grid)`` in [-1, 1]: random low-frequency waves, a family a model can learn."""
    generator = torch.Generator().manual_seed(seed)
    coords = cell_centres(grid)  # (P, D)
    frequency = torch.randn(count, channels, len(grid), generator=generator) * 1.5
    phase = torch.rand(count, channels, 1, generator=generator) * 2 * math.pi
    waves = torch.sin(torch.einsum("bcd,pd->bcp", frequency, coords) * math.pi / 2 + phase)
    return 0.9 * waves.view(count, channels, *grid)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("decoder", ["siren", "pixel"])
def test_a_tiny_model_trains_on_signals_of_every_dimension(dims, decoder):
    """Steps of the training recipe on a batch of 1-D, 2-D and 3-D signals lower its loss, and the trained model
    inpaints at its own grid (observed points kept) and renders another grid."""
    grid = GRIDS[dims]
    signals = smooth_signals(64, grid)
    torch.manual_seed(0)
    model = HyperSiren(ModelConfig(channels=1, dims=dims, decoder=decoder, **TINY))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    points = math.prod(grid)
    batch = training_batch(signals, ShuffledBatches(len(signals), 16, seed=0), 0, min_context=2, max_context=points)
    assert batch.coords.shape == (16, points, dims) and batch.target.shape == (16, points, 1)
    losses = []
    for _ in range(60):  # fit one batch: every part of the N-D wiring must carry gradient for this to drop
        loss, _ = hypernetwork_loss(model(batch.image, batch.mask, batch.coords), batch.target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]
    model.eval()
    signal, mask = signals[:3], random_context_mask(3, grid, num_context=math.prod(grid) // 4)
    completed = model.inpaint(signal, mask)
    assert completed.shape == signal.shape and torch.equal(
        completed[mask.expand_as(signal)], signal[mask.expand_as(signal)]
    )
    finer = tuple(2 * side for side in grid)
    assert model.inpaint(signal, mask, size=finer).shape == (3, 1, *finer)


@pytest.mark.parametrize("dims", [1, 3])
def test_pull_push_fill_of_any_dimension_keeps_observed_points_and_fills_every_other(dims):
    signal = torch.randn(2, 1, *GRIDS[dims])
    mask = random_context_mask(2, GRIDS[dims], num_context=3)
    finest = pull_push_fill(signal, mask, levels=4)[-1]
    assert finest.shape == (2, 2, *GRIDS[dims]) and torch.isfinite(finest).all()
    torch.testing.assert_close(finest[:, :1][mask], signal[mask])


def test_first_half_is_along_the_first_axis_and_protocol_names_it_by_dimension():
    mask = first_half_mask(1, (5, 4))
    assert mask[0, 0, :3].all() and not mask[0, 0, 3:].any()
    series = first_half_mask(1, (7,))
    assert series[0, 0].tolist() == [True] * 4 + [False] * 3
    assert protocol_settings((32, 32)) == ("10", "100", "1000", "top_half", "full")
    assert protocol_settings((128,)) == ("1", "13", "125", "first_half", "full")


@pytest.mark.parametrize(("dims", "method"), [(1, "linear"), (1, "cubic"), (2, "linear"), (3, "linear"), (3, "rbf")])
def test_classical_fills_reproduce_a_linear_signal_inside_the_observed_hull(dims, method):
    """Every interpolator here is exact on a linear function (thin-plate splines and natural cubic splines
    reproduce linear polynomials): a fill that mixes up axes or positions is not."""
    grid = GRIDS[dims]
    coords = cell_centres(grid)
    weights = torch.linspace(0.2, 0.5, dims)
    signal = (coords @ weights).view(1, 1, *grid)
    mask = random_context_mask(1, grid, num_context=math.prod(grid) // 2, generator=torch.Generator().manual_seed(1))
    mask.view(-1)[[0, -1]] = True  # the corners, so the hull is the whole grid for a series
    if dims > 1:
        mask[(0, 0, *[0] * (dims - 1))] = True
    filled = classical_fill(method, signal.double(), mask)
    hull = torch.ones_like(mask) if dims == 1 else mask.expand_as(signal)  # 2-D/3-D: compare where observed too
    torch.testing.assert_close(filled[hull], signal.double()[hull])
    if dims == 1:
        torch.testing.assert_close(filled, signal.double())


def test_each_dimension_has_its_classical_fills_each_with_a_table_row():
    assert set(CLASSICAL_FILLS[1]) == {"nearest", "linear", "periodic", "cubic"}
    assert set(CLASSICAL_FILLS[2]) == {"nearest", "linear", "biharmonic"}
    assert set(CLASSICAL_FILLS[3]) == {"nearest", "linear", "rbf"}
    assert all(list(CLASSICAL_METHODS[dims]) == list(CLASSICAL_FILLS[dims]) for dims in (1, 2, 3))
    with pytest.raises(ValueError, match="unknown classical fill 'biharmonic' for 1-D signals"):
        classical_fill("biharmonic", torch.zeros(1, 1, 8), torch.ones(1, 1, 8, dtype=torch.bool))


def test_one_loop_scores_inpainting_and_series_rows_alike():
    """``evaluate_inpainting`` is ``mean_psnrs`` with its rows: a row made by hand through the loop scores the
    same numbers, and float series are accepted where images are uint8."""
    model = HyperSiren(ModelConfig(channels=1, dims=1, **TINY)).eval()
    signals = smooth_signals(6, (32,))
    results = evaluate_inpainting(model, signals, mean_image=None, settings=("3", "full"), batch_size=4)
    assert set(results["3"]) == {"hypersiren", "hypersiren_pasted", "nearest", "linear", "periodic", "cubic"}
    assert results["full"]["nearest"]["psnr"] is None and results["full"]["hypersiren"]["psnr_unobserved"] is None

    def linear_only(signal: Tensor, mask: Tensor, rows: slice, setting: str) -> dict[str, tuple[Tensor, Tensor]]:
        return {"linear": (classical_fill("linear", signal, mask), signal)}

    again = mean_psnrs(signals, ("3",), linear_only, device="cpu", batch_size=5)
    assert again["3"]["linear"] == pytest.approx(results["3"]["linear"], rel=1e-6)  # float32 sums per batch


def test_float_images_in_the_wrong_range_are_refused():
    model = HyperSiren(ModelConfig(channels=1, dims=1, **TINY)).eval()
    with pytest.raises(TypeError, match=r"uint8 images in \[0, 255\] or float series"):
        evaluate_inpainting(model, torch.rand(2, 1, 16) * 255, mean_image=None)


def test_periodic_fill_interpolates_across_the_ends_of_a_closed_curve():
    signal = torch.zeros(1, 1, 8, dtype=torch.float64)
    signal[0, 0, 6] = 1.0
    mask = torch.zeros(1, 1, 8, dtype=torch.bool)
    mask[0, 0, [1, 6]] = True
    filled = classical_fill("periodic", signal, mask)[0, 0]
    # from sample 6 (1.0) on to sample 1 + 8 (0.0): samples 7 and 0 lie 1/3 and 2/3 of the way
    torch.testing.assert_close(filled[[7, 0]], torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))
    torch.testing.assert_close(filled[3], torch.tensor(0.4, dtype=torch.float64))  # inside: plain linear

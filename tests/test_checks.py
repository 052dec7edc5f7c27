"""Public functions refuse a NumPy array where a tensor belongs, and a count that is not an integer, in one line."""

import numpy as np
import pytest
import torch

from hypersiren import HyperSiren, Siren, cell_centres, psnr, random_context_mask
from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.config import DataConfig
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import evaluate_inpainting
from hypersiren.core.pixels import to_model_space
from hypersiren.single.fitting import FitConfig, fit_values
from hypersiren.single.photos import load_photo
from hypersiren.single.sdf import SDFFitConfig, extract_mesh

IMAGE, MASK = torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.bool)
SMALL_SIREN = Siren(in_features=2, hidden_features=4, hidden_layers=1, out_features=1)
SMALL_SIREN_3D = Siren(in_features=3, hidden_features=4, hidden_layers=1, out_features=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda model: model.inpaint(IMAGE.numpy(), MASK), r"image must be a torch.Tensor, got ndarray: .*from_numpy"),
        (lambda model: model.encode(IMAGE, MASK.numpy()), r"mask must be a torch.Tensor, got ndarray"),
        (lambda model: classical_fill("linear", IMAGE.numpy(), MASK), r"image must be a torch.Tensor"),
        (lambda model: psnr(np.zeros((1, 4)), torch.zeros(1, 4)), r"prediction must be a torch.Tensor"),
        (lambda model: to_model_space(np.zeros((3, 4, 4), np.uint8)), r"images must be a torch.Tensor"),
        (lambda model: random_context_mask(2, (8, 8), num_context=10.7), r"num_context must be an integer, got 10.7"),
        (lambda model: random_context_mask(2.0, (8, 8), num_context=10), r"batch_size must be an integer, got 2.0"),
        (lambda model: random_context_mask(2, (8, 8), num_context=True), r"num_context must be an integer, got True"),
        (lambda model: cell_centres((8.5, 8)), r"height must be an integer, got 8.5"),
        (lambda model: Siren(in_features=2, hidden_features=8.5), r"hidden_features must be an integer, got 8.5"),
        (lambda model: load_images(DataConfig(), "val", limit=3.5), r"limit must be an integer, got 3.5"),
        (lambda model: evaluate_inpainting(model, IMAGE, None), r"images must be uint8 images in \[0, 255\]"),
        (lambda model: classical_fill("linear", IMAGE, MASK.float()), r"mask must be bool \(True: observed\)"),
        (lambda model: FitConfig(steps=2.5), r"steps must be an integer, got 2.5"),
        (lambda model: SDFFitConfig(batch_size=10.5), r"batch_size must be an integer, got 10.5"),
        (lambda model: fit_values(SMALL_SIREN, IMAGE[0, :1].numpy(), FitConfig(steps=1)), r"signal must be a torch"),
        (lambda model: SMALL_SIREN(np.zeros((4, 2), np.float32)), r"coords must be a torch.Tensor"),
        (lambda model: load_photo("camera", 8.5), r"size must be an integer, got 8.5"),
        (lambda model: extract_mesh(SMALL_SIREN_3D, 8.5), r"resolution must be an integer, got 8.5"),
    ],
)
def test_a_numpy_array_or_a_fractional_count_is_refused_naming_it(call, message, tiny_model_config):
    with pytest.raises(TypeError, match=message):
        call(HyperSiren(tiny_model_config()))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load_images(DataConfig(), "val", limit=-1), r"limit must be >= 1, got -1"),  # was: all but the last
        (lambda: random_context_mask(-1, (8, 8), num_context=1), r"batch_size must be >= 0, got -1"),
        (lambda: cell_centres((0, 8)), r"height must be >= 1, got 0"),  # was: ZeroDivisionError
        (lambda: FitConfig(steps=0), r"steps must be >= 1, got 0"),  # was: a 'fit' of no step, scored
        (lambda: FitConfig(lr=float("nan")), r"lr must be a finite number > 0, got nan"),
    ],
)
def test_a_count_out_of_range_is_refused_not_wrapped_around(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_numpy_integers_are_counts():
    assert int(random_context_mask(2, (np.int64(8), 8), num_context=np.int64(10)).sum()) == 20
    assert cell_centres((np.int32(4), 4)).shape == (16, 2)
    with pytest.raises(ValueError, match="hidden_layers must be >= 0"):
        Siren(in_features=2, hidden_layers=-1)
    with pytest.raises(ValueError, match="first_omega must be a finite number > 0"):
        Siren(in_features=2, first_omega=float("nan"))

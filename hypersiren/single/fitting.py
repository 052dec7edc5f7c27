"""Fit one coordinate network to one signal on a grid: by its values, its gradient or its Laplacian.

A signal is model-space values in [-1, 1] on a grid of any number of dimensions, ``(C, *spatial)``:
a series or audio clip ``(C, T)``, an image ``(C, H, W)`` (``pixels.to_model_space``), a volume
``(C, D, H, W)``. The network maps the grid's cell centres ``(N, D)`` in [-1, 1]
(``coordinates.cell_centres(spatial)``, D = len(spatial), the network's ``in_features``) to values
``(N, C)``. Fits are full-batch Adam, as in the paper: every step sees every sample.

Derivative supervision cannot recover what the derivative discards, so such fits
are scored modulo it (``match_harmonic``): a gradient fit loses exactly a
constant, so its PSNR is taken after the best constant offset (as the paper
does). A Laplacian fit loses every harmonic function (Δh = 0: constants, ramps,
x² − y², …); ``fit_laplacian`` also scores it after the best offset, and, for
images, ``match_harmonic(..., degree=k)`` shows how much of the remaining error
lies in the harmonic polynomials of degree ≤ k.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn
from tqdm import tqdm

from hypersiren.core.checks import require_count, require_positive, require_tensor
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.losses import gradient_mse, image_mse, laplacian_mse
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_unit_range
from hypersiren.errors import FitDivergedError

Objective = Callable[[Tensor, Tensor], Tensor]  # (values (N, C), coords (N, D)) -> scalar loss
# Floats a step keeps per point and per hidden unit of each layer, by the order of the derivative supervised: measured
# on the CPU at 128² points, 4 layers of 256 (5.3, 12.1, 41.3: each order keeps the graph of the one below), rounded up.
FLOATS_PER_UNIT = {0: 6, 1: 13, 2: 42}
FIT_SAFETY = (
    1.5  # for what the measurement leaves out (other sizes, devices); 2x would refuse the paper's fits on 24 GB
)


@dataclass
class FitConfig:
    steps: int = 500
    lr: float = 1e-4  # the paper's rate for every activation

    def __post_init__(self) -> None:
        require_count(self.steps, "steps", low=1)
        require_positive(self.lr, "lr")


@dataclass
class FitResult:
    psnr: list[float]  # dB at every step, of the network before that step's update
    final_psnr: float  # dB after the last update
    seconds: float  # wall time of the optimization


def grid_points(signal: Tensor) -> Tensor:
    """A signal's samples as points in ``cell_centres`` order: ``(C, *spatial) -> (prod(spatial), C)``."""
    return rearrange(signal, "c ... -> (...) c")


def grid_signal(values: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """The inverse of ``grid_points``: ``values (prod(spatial), C) -> (C, *spatial)``."""
    return rearrange(values, "n c -> c n").reshape(-1, *spatial)


def harmonic_basis(height: int, width: int, degree: int, device: torch.device | str | None = None) -> Tensor:
    """Harmonic polynomials of degree ≤ ``degree`` on the pixel grid, ``(H*W, 2 degree + 1)``.

    Re and Im of (row + i·col)^k span the harmonic polynomials of degree k in 2-D;
    degree 0 is the constant, degree 1 adds the two linear ramps.
    """
    coords = cell_centres((height, width), device=device)
    z = torch.complex(coords[:, 0], coords[:, 1])
    columns = [torch.ones_like(coords[:, 0])]
    for k in range(1, degree + 1):
        columns += [(z**k).real, (z**k).imag]
    return torch.stack(columns, dim=1)


def match_harmonic(prediction: Tensor, reference: Tensor, degree: int = 0) -> Tensor:
    """``prediction (C, *spatial)`` plus the harmonic polynomial of degree ≤ ``degree`` that best matches ``reference``.

    Least squares per channel; degree 0 shifts the prediction to the reference's mean, on a grid of any
    number of dimensions. Higher degrees are for images ``(C, H, W)`` (``harmonic_basis`` is 2-D).
    """
    spatial = tuple(prediction.shape[1:])
    if degree == 0:
        basis = prediction.new_ones(math.prod(spatial), 1)
    elif len(spatial) == 2:
        basis = harmonic_basis(*spatial, degree, device=prediction.device)
    else:
        raise ValueError(
            f"harmonic matching of degree {degree} needs an image (C, H, W), got {tuple(prediction.shape)}: "
            "use degree 0 (the best constant) for signals of other dimensions"
        )
    residual = grid_points(reference - prediction)
    coefficients = torch.linalg.lstsq(basis, residual).solution  # (basis functions, C)
    return prediction + grid_signal(basis @ coefficients, spatial)


def signal_psnr(prediction: Tensor, reference: Tensor, match_degree: int | None = None) -> float:
    """PSNR (dB) on [0, 1] of model-space signals ``(C, *spatial)``, optionally modulo harmonic polynomials.

    ``match_degree`` None compares as is; k compares ``match_harmonic(prediction, reference, k)``.
    """
    if match_degree is not None:
        prediction = match_harmonic(prediction, reference, match_degree)
    return float(psnr(to_unit_range(prediction).unsqueeze(0), to_unit_range(reference).unsqueeze(0)))


def fit_bytes(points: int, hidden: int, layers: int, derivative_order: int = 0, in_features: int = 2) -> float:
    """Estimated bytes of one full-batch step of a SIREN (``layers`` hidden layers of ``hidden`` units) on ``points``
    coordinates, supervised by its values (``derivative_order`` 0), gradient (1) or Laplacian (2): the measured
    activations (``FLOATS_PER_UNIT``) and the weights, gradients and Adam's moments, times ``FIT_SAFETY``."""
    parameters = (in_features + 1) * hidden + layers * (hidden + 1) * hidden + hidden + 1
    per_point = (layers + 1) * hidden * FLOATS_PER_UNIT[derivative_order]
    return FIT_SAFETY * 4 * (points * per_point + 4 * parameters)


def fit(
    net: nn.Module,
    objective: Objective,
    reference: Tensor,
    config: FitConfig,
    match_degree: int | None = None,
    progress: str | None = None,
) -> FitResult:
    """Minimize ``objective`` over the grid of ``reference (C, *spatial)``; PSNR against ``reference``.

    ``net`` maps ``(N, len(spatial))`` coordinates to ``(N, C)``; ``match_degree`` as in ``signal_psnr``;
    ``progress`` is a tqdm description (None: silent).
    """
    spatial = tuple(reference.shape[1:])
    device = next(net.parameters()).device
    reference = reference.to(device)
    # Derivative objectives differentiate w.r.t. the coordinates; for value fits this costs one (N, D) product.
    coords = cell_centres(spatial, device=device).requires_grad_(True)

    def step_loss() -> tuple[Tensor, float]:
        values = net(coords)
        return objective(values, coords), signal_psnr(grid_signal(values.detach(), spatial), reference, match_degree)

    history, seconds = minimize(net, step_loss, steps=config.steps, lr=config.lr, progress=progress)
    with torch.no_grad():
        final = signal_psnr(grid_signal(net(coords), spatial), reference, match_degree)
    return FitResult(psnr=history, final_psnr=final, seconds=seconds)


def minimize(
    net: nn.Module, step_loss: Callable[[], tuple[Tensor, float]], steps: int, lr: float, progress: str | None = None
) -> tuple[list[float], float]:
    """The optimization of every single-signal fit: ``steps`` Adam steps on ``net``'s parameters.

    ``step_loss()`` gives the loss of one step and a number to record of the network before that
    step's update (a PSNR, the loss itself). Returns the records and the seconds the loop took;
    ``progress`` is a tqdm description (None: silent). A NaN or inf loss or record, or weights left non-finite by
    the last update, raise ``FitDivergedError``: a diverged fit has no result to report.
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    records = []
    start = time.perf_counter()
    for step in tqdm(range(steps), desc=progress, disable=progress is None, leave=False):
        loss, record = step_loss()
        if not (math.isfinite(loss.item()) and math.isfinite(record)):  # the record already waited for the step
            raise FitDivergedError(
                f"{progress or 'the fit'} diverged: non-finite loss {loss.item()} at step {step + 1} of {steps} "
                f"(learning rate {lr:g}); its numbers would be meaningless: rerun at a lower learning rate "
                f"(e.g. --lr {lr / 10:g})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        records.append(record)
    if not all(bool(torch.isfinite(parameter).all()) for parameter in net.parameters()):  # the last update's
        raise FitDivergedError(
            f"{progress or 'the fit'} diverged: its last update left NaN or inf weights (learning rate {lr:g}): "
            f"rerun at a lower learning rate (e.g. --lr {lr / 10:g})"
        )
    return records, time.perf_counter() - start


def require_signal(signal: Tensor, name: str) -> Tensor:
    """``signal`` if it is a tensor ``(C, *spatial)`` with at least one spatial axis; an error naming the fix if not."""
    if require_tensor(signal, name).dim() < 2:
        raise ValueError(
            f"{name} must be (C, *spatial), e.g. (C, T) for a series or (C, H, W) for an image, got shape "
            f"{tuple(signal.shape)}: add the channel axis with {name}.unsqueeze(0)"
        )
    return signal


def fit_values(net: nn.Module, signal: Tensor, config: FitConfig, progress: str | None = None) -> FitResult:
    """Fit the values of ``signal (C, *spatial)`` (MSE); ``net`` takes ``len(spatial)`` coordinates.

    A series ``(C, T)`` is fitted by a network of 1 input, an image ``(C, H, W)`` of 2, a volume ``(C, D, H, W)``
    of 3.
    """
    target = grid_points(require_signal(signal, "signal")).to(next(net.parameters()).device)

    def objective(values: Tensor, coords: Tensor) -> Tensor:
        return image_mse(values, target)

    return fit(net, objective, signal, config, progress=progress)


def fit_gradient(
    net: nn.Module, target_gradient: Tensor, reference: Tensor, config: FitConfig, progress: str | None = None
) -> FitResult:
    """Fit a scalar signal by its gradient ``(D, *spatial)`` only (D = len(spatial), one component per axis in
    ``cell_centres`` order); PSNR against ``reference (1, *spatial)`` up to an offset.

    ``finite_differences.sobel_gradient(image)[0]`` is the gradient (∂/∂row, ∂/∂col) of an image ``(1, H, W)``.
    """
    require_tensor(target_gradient, "target_gradient")
    require_signal(reference, "reference")
    target = grid_points(target_gradient).to(next(net.parameters()).device)

    def objective(values: Tensor, coords: Tensor) -> Tensor:
        return gradient_mse(values, coords, target)

    return fit(net, objective, reference, config, match_degree=0, progress=progress)


def fit_laplacian(
    net: nn.Module, target_laplacian: Tensor, reference: Tensor, config: FitConfig, progress: str | None = None
) -> FitResult:
    """Fit a scalar signal by its Laplacian ``(1, *spatial)`` only; PSNR against ``reference (1, *spatial)`` up to
    an offset.

    ``finite_differences.discrete_laplacian(image)`` is the Laplacian of an image ``(1, H, W)``.
    """
    require_tensor(target_laplacian, "target_laplacian")
    require_signal(reference, "reference")
    target = grid_points(target_laplacian).to(next(net.parameters()).device)

    def objective(values: Tensor, coords: Tensor) -> Tensor:
        return laplacian_mse(values, coords, target)

    return fit(net, objective, reference, config, match_degree=0, progress=progress)

"""Data-driven priors anyone can fit in a few lines: the bar a learned model must clear, and its head start.

A learned prior is worth running only if it knows more than the simplest priors fitted to the same training
signals. Both take signals ``(N, C, *S)`` in [-1, 1] of one grid, and complete ``(B, C, *S)`` from a bool mask
``(B, 1, *S)`` with the observed points kept, batched (no loop over signals):

- ``GaussianPrior``: the training mean and top principal components plus an isotropic residual (probabilistic
  PCA, Tipping & Bishop 1999); a completion is the closed-form conditional mean given the observed points.
- ``NearestNeighbours``: the mean of the ``k`` training signals closest on the observed points.

Their settings (components, noise, k) are chosen by ``select_priors`` on a fold held out of the training split,
never on the split that is scored.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_unit_range


def _flat_mask(mask: Tensor, channels: int) -> Tensor:
    """``(B, 1, *S)`` bool -> ``(B, C·P)`` float, each point's observation repeated for its channels."""
    return mask.flatten(2).expand(-1, channels, -1).flatten(1).float()


GATHER_BYTES = 2**28  # 256 MiB of basis rows gathered at a time by complete_many


class GaussianPrior(nn.Module):
    """x = mean + V diag(s) z + noise, z ~ N(0, I), noise ~ N(0, σ² I): completions are E[x | observed points].

    ``V (D, k)`` are the top ``k`` principal directions of the training signals, ``s = sqrt(λ - σ²)``, σ² the
    mean discarded eigenvalue (PPCA's maximum likelihood) times ``noise_scale``. Given the observed points o,
    E[z | x_o] = (S V_oᵀ V_o S + σ² I)⁻¹ S V_oᵀ (x_o - mean_o): one k×k solve per signal, whatever the number
    of observed points; with none observed the completion is the mean.
    """

    def __init__(self, shape: tuple[int, ...], components: int):
        super().__init__()
        self.shape = tuple(shape)  # (C, *S), the grid it was fitted on
        dims = math.prod(self.shape)
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("basis", torch.zeros(dims, components))  # V: (D, k), orthonormal columns
        self.register_buffer("scales", torch.zeros(components))  # s: (k,)
        self.register_buffer("residual", torch.ones(()))  # PPCA's σ²: the discarded variance per axis
        self.register_buffer("noise", torch.ones(()))  # σ² = residual * noise_scale

    @classmethod
    def fit(cls, signals: Tensor, components: int, noise_scale: float = 1.0) -> "GaussianPrior":
        """The prior of ``signals (N, C, *S)`` in [-1, 1] with ``components`` principal directions (at most
        ``min(N, D) - 1``)."""
        prior = cls(tuple(signals.shape[1:]), components)
        prior.set_spectrum(principal_spectrum(signals, components), noise_scale=noise_scale)
        return prior

    def set_spectrum(self, spectrum: "Spectrum", noise_scale: float = 1.0) -> None:
        """Set the prior from ``principal_spectrum``'s output, its first ``k`` directions kept."""
        components, dims = self.scales.numel(), self.mean.numel()
        if components > spectrum.variances.numel():
            raise ValueError(f"{components} components asked of a spectrum of {spectrum.variances.numel()}")
        kept = spectrum.variances[:components]
        residual = (spectrum.total - kept.sum()).clamp_min(0) / (dims - components)  # discarded variance per axis
        self.mean.copy_(spectrum.mean)
        self.basis.copy_(spectrum.directions[:, :components])
        self.scales.copy_((kept - residual).clamp_min(0).sqrt())
        self.residual.fill_(float(residual.clamp_min(1e-6)))
        self.noise.fill_(float((residual * noise_scale).clamp_min(1e-6)))

    @torch.no_grad()
    def forward(self, signal: Tensor, mask: Tensor) -> Tensor:
        """``signal (B, C, *S)``, ``mask (B, 1, *S)`` bool -> the conditional mean ``(B, C, *S)``, observed kept.

        Every step of it is a fixed-shape tensor op (no value read back): the training step's path."""
        observed, centred = self._residual(signal, mask)
        gram = (self.basis.T * observed.unsqueeze(1)) @ self.basis  # (B, k, k): V_oᵀ V_o
        completion = _conditional_mean(self.mean, self.basis, self.scales, self.noise, gram, centred)
        return torch.where(mask, signal, completion.view_as(signal).to(signal.dtype))

    @torch.no_grad()
    def complete_many(self, signal: Tensor, mask: Tensor, settings: list[tuple[int, float]]) -> list[Tensor]:
        """The completions of the priors with the first ``k`` of these directions and noise ``scale``·σ²_k, for
        each ``(k, scale)`` of ``settings``: one Gram matrix for all (``select_priors``), of the observed points
        or of the missing ones, whichever are fewer (V has orthonormal columns: V_oᵀV_o = I - V_mᵀV_m). Signals
        are taken ``GATHER_BYTES`` of gathered rows at a time, so memory stays bounded at any batch and grid."""
        per_signal = self.basis.numel() * self.basis.element_size()  # the most one signal's gathered rows can take
        chunk = max(1, GATHER_BYTES // per_signal)
        if len(signal) > chunk:
            parts = [self.complete_many(*pair, settings) for pair in zip(signal.split(chunk), mask.split(chunk))]
            return [torch.cat(completions) for completions in zip(*parts)]
        observed, centred = self._residual(signal, mask)
        counts = observed.sum(dim=1)
        fewer_missing = bool(counts.max() > observed.shape[1] - counts.min())
        chosen = 1 - observed if fewer_missing else observed
        gathered = _gathered_rows(self.basis, chosen)  # (B, n, k): V at the chosen points, zero rows as padding
        gram = gathered.mT @ gathered
        if fewer_missing:
            gram = torch.eye(gram.shape[-1], device=gram.device) - gram
        variances = self.scales.square() + self.residual  # λ_j of the fitted spectrum, up to k
        completions = []
        for components, scale in settings:
            residual = self._residual_variance(variances, components)
            scales = (variances[:components] - residual).clamp_min(0).sqrt()
            basis, small_gram = self.basis[:, :components], gram[:, :components, :components]
            completion = _conditional_mean(self.mean, basis, scales, residual * scale, small_gram, centred)
            completions.append(torch.where(mask, signal, completion.view_as(signal).to(signal.dtype)))
        return completions

    def _residual_variance(self, variances: Tensor, components: int) -> Tensor:
        """PPCA's σ² for the first ``components`` of ``variances``: the mean of those discarded, the rest of the
        spectrum (beyond this prior's own k) counted at this prior's own σ²."""
        dims, kept = self.mean.numel(), variances.numel()
        discarded = variances[components:].sum() + self.residual * (dims - kept)
        return (discarded / max(dims - components, 1)).clamp_min(1e-6)

    def _residual(self, signal: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, D)`` observed flags and ``(B, D)`` observed values minus the mean (0 where unobserved)."""
        if tuple(signal.shape[1:]) != self.shape:
            raise ValueError(
                f"this Gaussian prior was fitted on signals of shape {self.shape}, got {tuple(signal.shape[1:])}: "
                "pass signals of the grid it was fitted on"
            )
        observed = _flat_mask(mask, signal.shape[1])  # (B, D)
        return observed, (signal.flatten(1).float() - self.mean).nan_to_num() * observed  # NaN where missing: 0


def _conditional_mean(
    mean: Tensor, basis: Tensor, scales: Tensor, noise: Tensor, gram: Tensor, centred: Tensor
) -> Tensor:
    """E[x | x_o] ``(B, D)`` of the prior (``mean``, ``basis`` V, ``scales`` s, ``noise`` σ²) from ``gram = V_oᵀV_o
    (B, k, k)`` and the centred observations ``(B, D)`` (0 where unobserved)."""
    system = scales.unsqueeze(-1) * gram * scales + noise * torch.eye(scales.numel(), device=gram.device)
    right = scales * (centred @ basis)  # (B, k): S V_oᵀ (x_o - mean_o)
    latent = torch.linalg.solve(system, right)  # (B, k)
    return mean + (latent * scales) @ basis.T


def _gathered_rows(matrix: Tensor, chosen: Tensor) -> Tensor:
    """``matrix (D, k)``'s rows where ``chosen (B, D)`` is 1 -> ``(B, n, k)``, n the most chosen of any signal,
    zero rows padding the others (a zero row adds nothing to a Gram matrix)."""
    count = int(chosen.sum(dim=1).max())
    order = chosen.argsort(dim=1, descending=True, stable=True)[:, :count]  # (B, n): chosen rows first
    return matrix[order] * chosen.gather(1, order).unsqueeze(-1)


class Spectrum(NamedTuple):
    mean: Tensor  # (D,)
    directions: Tensor  # (D, K), orthonormal columns, by decreasing variance
    variances: Tensor  # (K,)
    total: Tensor  # () the variance summed over all D axes, the discarded ones' included


def principal_spectrum(signals: Tensor, components: int) -> Spectrum:
    """``signals (N, C, *S)`` -> their mean and their top ``components`` principal directions and variances
    (at most ``min(N, D) - 1``), by a randomized SVD (Halko et al. 2011, ``torch.svd_lowrank``): a full SVD of
    4,560 faces of 32x32 takes a minute on two cores, this a few seconds, and one basis is cut to any smaller k.
    Its random draw is seeded: the same signals give the same basis, and the caller's random stream is untouched."""
    flat = signals.flatten(1).float()
    mean = flat.mean(dim=0)
    centred = flat - mean
    rank = min(flat.shape) - 1
    if not 1 <= components <= rank:
        raise ValueError(
            f"a Gaussian prior of {components} components needs more training signals and points: "
            f"{len(flat)} signals of {flat.shape[1]} values give at most {rank}; use fewer components"
        )
    with torch.random.fork_rng(devices=[centred.device] if centred.is_cuda else []):  # one basis per data, every run
        torch.manual_seed(0)
        _, singular, directions = torch.svd_lowrank(centred, q=min(components + 16, min(flat.shape)), niter=4)
    variances = singular[:components].square() / len(flat)
    return Spectrum(mean, directions[:, :components].contiguous(), variances, centred.square().sum() / len(flat))


class NearestNeighbours(nn.Module):
    """The mean of the ``k`` training signals closest (squared error) to a signal on its observed points."""

    def __init__(self, signals: Tensor, k: int):
        super().__init__()
        self.register_buffer("signals", signals.flatten(1).float())  # (N, D)
        self.k = k

    @torch.no_grad()
    def forward(self, signal: Tensor, mask: Tensor) -> Tensor:
        """``signal (B, C, *S)``, ``mask (B, 1, *S)`` bool -> ``(B, C, *S)``, observed kept."""
        return self.completions(signal, mask, (self.k,))[self.k]

    def completions(self, signal: Tensor, mask: Tensor, ks: tuple[int, ...]) -> dict[int, Tensor]:
        """``{k: signal completed by the mean of its k nearest, observed kept}`` for each ``k`` of ``ks`` (one
        distance computation for all), ``GATHER_BYTES`` of gathered neighbours at a time."""
        chunk = max(1, GATHER_BYTES // (max(ks) * self.signals.shape[1] * self.signals.element_size()))
        if len(signal) > chunk:
            parts = [self.completions(*pair, ks) for pair in zip(signal.split(chunk), mask.split(chunk))]
            return {k: torch.cat([part[k] for part in parts]) for k in ks}
        observed = _flat_mask(mask, signal.shape[1])  # (B, D)
        values = signal.flatten(1).float().nan_to_num() * observed
        # ||m(x - t)||² = Σ m x² - 2 Σ m x t + Σ m t², for every training signal t at once: (B, N)
        distances = (values.square().sum(1, keepdim=True) - 2 * values @ self.signals.T) + (
            observed @ self.signals.square().T
        )
        nearest = distances.topk(max(ks), dim=1, largest=False).indices  # (B, k), nearest first
        gathered = self.signals[nearest]  # (B, k, D)
        return {k: torch.where(mask, signal, gathered[:, :k].mean(dim=1).view_as(signal).to(signal.dtype)) for k in ks}


# Candidates scored on the held-out fold: principal components, noise scale (times PPCA's σ²), neighbours.
COMPONENTS = (8, 16, 32, 64, 128, 256, 512)
NOISE_SCALES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
NEIGHBOURS = (1, 2, 4, 8, 16, 32)
FOLD_FRACTION = 0.1
Choices = dict[str, dict[str, dict[str, float]]]  # {setting: {"gaussian": {...}, "neighbours": {...}}}


def select_priors(
    train: Tensor,
    settings: tuple[str, ...],
    make_masks: Callable[[str, int], Tensor],
    fold_fraction: float = FOLD_FRACTION,
    batch_size: int = 128,
) -> Choices:
    """Each setting's best Gaussian (components, then noise scale) and neighbours (k), by mean PSNR on the last
    ``fold_fraction`` of ``train (N, C, *S)`` (in [-1, 1]) completed by priors fitted on the rest.

    ``make_masks(setting, count)`` gives the fold's masks. Returns ``{setting: {"gaussian": {"components",
    "noise_scale", "fold_psnr"}, "neighbours": {"k", "fold_psnr"}}}``: chosen without the split that is scored.
    """
    held = max(1, round(len(train) * fold_fraction))
    fit, fold = train[:-held], train[-held:]
    rank = min(len(fit), fit[0].numel()) - 1
    components = [k for k in COMPONENTS if k <= rank]
    gaussian = GaussianPrior.fit(fit, max(components))
    neighbours = NearestNeighbours(fit, k=1)
    neighbour_ks = tuple(k for k in NEIGHBOURS if k <= len(fit))

    def scores(mask: Tensor, complete: Callable[[Tensor, Tensor], dict]) -> dict:
        """Mean fold PSNR of each completion ``complete(signal, mask)`` names."""
        totals: dict = {}
        for start in range(0, held, batch_size):
            signal, seen = fold[start : start + batch_size], mask[start : start + batch_size]
            for key, completed in complete(signal, seen).items():
                score = float(psnr(to_unit_range(completed), to_unit_range(signal)).sum()) / held
                totals[key] = totals.get(key, 0.0) + score
        return totals

    def gaussians(candidates: list[tuple[int, float]]) -> Callable[[Tensor, Tensor], dict]:
        return lambda signal, seen: dict(zip(candidates, gaussian.complete_many(signal, seen, candidates)))

    def nearest(signal: Tensor, seen: Tensor) -> dict:
        return neighbours.completions(signal, seen, neighbour_ks)

    choices = {}
    for setting in settings:
        mask = make_masks(setting, held)
        by_components = scores(mask, gaussians([(k, 1.0) for k in components]))  # then the noise, for the best k
        best_k = max(by_components, key=by_components.__getitem__)[0]
        by_noise = scores(mask, gaussians([(best_k, scale) for scale in NOISE_SCALES if scale != 1.0]))
        by_noise[best_k, 1.0] = by_components[best_k, 1.0]
        best_k, scale = max(by_noise, key=by_noise.__getitem__)
        by_k = scores(mask, nearest)
        k = max(by_k, key=by_k.__getitem__)
        choices[setting] = {
            "gaussian": {"components": best_k, "noise_scale": scale, "fold_psnr": by_noise[best_k, scale]},
            "neighbours": {"k": k, "fold_psnr": by_k[k]},
        }
    return choices


class DataPriors:
    """The two data-driven baselines of each setting, fitted on a whole training split with ``select_priors``'
    choices (one SVD for every setting): ``fill(method, setting, signal, mask)``."""

    METHODS = ("gaussian", "neighbours")

    def __init__(self, train: Tensor, choices: Choices):
        self.choices = choices
        largest = max(int(chosen["gaussian"]["components"]) for chosen in choices.values())
        self.gaussian = GaussianPrior.fit(train, largest)
        self.neighbours = NearestNeighbours(train, k=1)

    def to(self, device: torch.device | str) -> "DataPriors":
        self.gaussian, self.neighbours = self.gaussian.to(device), self.neighbours.to(device)
        return self

    def fill(self, method: str, setting: str, signal: Tensor, mask: Tensor) -> Tensor:
        """``signal (B, C, *S)`` completed from ``mask`` by ``method`` with ``setting``'s chosen settings."""
        chosen = self.choices[setting][method]
        if method == "gaussian":
            return self.gaussian.complete_many(signal, mask, [(chosen["components"], chosen["noise_scale"])])[0]
        k = int(chosen["k"])
        return self.neighbours.completions(signal, mask, (k,))[k]

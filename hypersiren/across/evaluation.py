"""Held-out inpainting evaluation: HyperSiren and the classical fills on the same seeded masks."""

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from hypersiren.across.baseline_fill import CLASSICAL_FILLS, classical_fill, mean_image_fill
from hypersiren.across.context import CONTEXT_SETTINGS, context_mask
from hypersiren.across.model import HyperSiren
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.results import markdown_table

METHODS = {
    "hypersiren": "HyperSiren (raw rendering)",
    "hypersiren_pasted": "HyperSiren, observed pixels pasted",
    "mean_image": "Mean training image",
    "nearest": "Nearest (scipy griddata)",
    "linear": "Linear (scipy griddata, nearest outside the hull)",
    "biharmonic": "Biharmonic (scikit-image inpaint_biharmonic)",
}
METRICS = {"psnr": "all pixels", "psnr_unobserved": "unobserved pixels only"}


def seeded_masks(setting: str, count: int, height: int, width: int, seed: int) -> Tensor:
    """The masks of one setting for ``count`` images, independent of batch size and device."""
    generator = torch.Generator().manual_seed(seed * 1_009 + sum(map(ord, setting)))
    return context_mask(setting, count, height, width, generator)


@torch.no_grad()
def evaluate_inpainting(
    model: HyperSiren,
    images: Tensor,
    mean_image: Tensor,
    settings: tuple[str, ...] = CONTEXT_SETTINGS,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean per-image PSNR (dB, on [0, 1]) over all and over unobserved pixels.

    Returns ``{setting: {method: {metric: value}}}``.

    ``images (N, C, H, W)`` uint8; ``mean_image (C, H, W)`` in [-1, 1]. With every pixel
    observed ("full") a fill is exact and unobserved pixels do not exist: those are None.
    """
    device = next(model.parameters()).device
    count, _, height, width = images.shape
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for setting in tqdm(settings, desc="evaluating", disable=not progress):
        masks = seeded_masks(setting, count, height, width, seed)
        full = bool(masks.all())
        methods = ["hypersiren"] if full else list(METHODS)
        sums = {method: torch.zeros(len(METRICS), dtype=torch.float64) for method in methods}
        for start in range(0, count, batch_size):
            image = to_model_space(images[start : start + batch_size].to(device))
            mask = masks[start : start + batch_size].to(device)
            rendered = model.inpaint(image, mask)
            predictions = {"hypersiren": rendered}
            if not full:
                predictions["hypersiren_pasted"] = torch.where(mask, image, rendered)
                predictions["mean_image"] = mean_image_fill(mean_image.to(device), image, mask)
                predictions |= {method: classical_fill(method, image, mask) for method in CLASSICAL_FILLS}
            truth = to_unit_range(image)
            for method, prediction in predictions.items():
                prediction = to_unit_range(prediction)
                scores = [psnr(prediction, truth).sum()]
                scores.append(torch.zeros(()) if full else psnr(prediction, truth, where=~mask).sum())
                sums[method] += torch.stack(scores).double().cpu()
        results[setting] = {
            method: {
                metric: float(sums[method][index]) / count if method in sums and not (full and index) else None
                for index, metric in enumerate(METRICS)
            }
            for method in METHODS
        }
    return results


def inpainting_table(results: dict[str, dict[str, dict[str, float | None]]], metric: str = "psnr") -> str:
    """Methods as rows, context settings as columns; the best number of each column in bold."""
    best = {
        s: max((v[metric] for v in by_method.values() if v[metric] is not None), default=None)
        for s, by_method in results.items()
    }

    def cell(value: float | None, setting: str) -> str | None:
        return None if value is None else (f"**{value:.2f}**" if value == best[setting] else f"{value:.2f}")

    rows = [
        {f"PSNR (dB), {METRICS[metric]}": label} | {s: cell(results[s][method][metric], s) for s in results}
        for method, label in METHODS.items()
    ]
    return markdown_table(rows)


@torch.no_grad()
def evaluate_superresolution(model: HyperSiren, low: Tensor, high: Tensor, batch_size: int = 256) -> dict[str, float]:
    """Mean per-image PSNR (dB, on [0, 1]) of rendering ``low`` at ``high``'s size, against bicubic upsampling.

    ``low (N, C, h, w)`` and ``high (N, C, H, W)`` uint8, the same images resized from
    one original: the model sees every pixel of ``low`` and renders at ``(H, W)``.
    """
    device = next(model.parameters()).device
    size = tuple(high.shape[-2:])
    sums = {"hypersiren": 0.0, "bicubic": 0.0}
    for start in range(0, len(low), batch_size):
        image = to_model_space(low[start : start + batch_size].to(device))
        truth = to_unit_range(to_model_space(high[start : start + batch_size].to(device)))
        mask = torch.ones_like(image[:, :1], dtype=torch.bool)
        predictions = {
            "hypersiren": model.inpaint(image, mask, size=size),
            "bicubic": F.interpolate(image, size=size, mode="bicubic", align_corners=False),
        }
        for method, prediction in predictions.items():
            sums[method] += float(psnr(to_unit_range(prediction), truth).sum())
    return {method: total / len(low) for method, total in sums.items()}


def superresolution_table(scores: dict[str, float], low_size: int) -> str:
    """``evaluate_superresolution``'s scores as a Markdown table."""
    labels = {"hypersiren": "HyperSiren rendered at 2x", "bicubic": "Bicubic upsampling (torch)"}
    title = f"{low_size}² (all pixels) → {2 * low_size}², PSNR (dB) vs the true {2 * low_size}² image"
    return markdown_table([{title: labels[method], "": f"{value:.2f}"} for method, value in scores.items()])

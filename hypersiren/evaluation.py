"""Held-out inpainting evaluation: HyperSiren and the baselines on the same seeded masks."""

import torch
from torch import Tensor
from tqdm import tqdm

from hypersiren.baseline_fill import mean_image_fill, nearest_pixel_fill
from hypersiren.context import CONTEXT_SETTINGS, context_mask
from hypersiren.data import to_model_space, to_unit_range
from hypersiren.metrics import mse, psnr
from hypersiren.model import HyperSiren

METHODS = {
    "hypersiren": "HyperSiren (raw rendering)",
    "hypersiren_pasted": "HyperSiren, observed pixels pasted",
    "mean_image": "Mean training image, observed pasted",
    "nearest_pixel": "Nearest observed pixel",
}


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
) -> dict[str, dict[str, dict[str, float]]]:
    """PSNR (dB) and MSE on [0, 1], averaged per image: ``{setting: {method: {"psnr", "mse"}}}``.

    ``images (N, C, H, W)`` uint8; ``mean_image (C, H, W)`` in [-1, 1].
    """
    device = next(model.parameters()).device
    count, _, height, width = images.shape
    results: dict[str, dict[str, dict[str, float]]] = {}
    for setting in tqdm(settings, desc="evaluating", disable=not progress):
        masks = seeded_masks(setting, count, height, width, seed)
        sums = {method: torch.zeros(2, dtype=torch.float64) for method in METHODS}
        for start in range(0, count, batch_size):
            image = to_model_space(images[start : start + batch_size].to(device))
            mask = masks[start : start + batch_size].to(device)
            rendered = model.inpaint(image, mask)
            predictions = {
                "hypersiren": rendered,
                "hypersiren_pasted": torch.where(mask, image, rendered),
                "mean_image": mean_image_fill(mean_image.to(device), image, mask),
                "nearest_pixel": nearest_pixel_fill(image, mask),
            }
            truth = to_unit_range(image)
            for method, prediction in predictions.items():
                prediction = to_unit_range(prediction)
                sums[method] += torch.stack([psnr(prediction, truth).sum(), mse(prediction, truth).sum()]).double().cpu()
        results[setting] = {method: {"psnr": float(s[0]) / count, "mse": float(s[1]) / count} for method, s in sums.items()}
    return results


def markdown_table(results: dict[str, dict[str, dict[str, float]]], metric: str = "psnr") -> str:
    """Methods as rows, context settings as columns."""
    settings = list(results)
    lines = [
        f"| {metric.upper()} ({'dB' if metric == 'psnr' else '[0,1]'}) | " + " | ".join(settings) + " |",
        "|---|" + "---:|" * len(settings),
    ]
    number = "{:.2f}" if metric == "psnr" else "{:.4f}"
    for method, label in METHODS.items():
        lines.append(f"| {label} | " + " | ".join(number.format(results[s][method][metric]) for s in settings) + " |")
    return "\n".join(lines)

"""Figures users look at: context | prediction | ground truth."""

from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid

UNOBSERVED_GRAY = 0.5


def context_image(image: Tensor, mask: Tensor) -> Tensor:
    """Observed pixels of ``image (B, C, H, W)`` in [0, 1], the rest gray."""
    return torch.where(mask, image, torch.full_like(image, UNOBSERVED_GRAY))


def comparison_grid(image: Tensor, mask: Tensor, prediction: Tensor, padding: int = 2) -> Tensor:
    """One row per image: context | prediction | truth. All inputs in [0, 1]; returns ``(C, H', W')``."""
    if prediction.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"prediction {tuple(prediction.shape)} must match image {tuple(image.shape)}")
    triples = torch.stack([context_image(image, mask), prediction, image], dim=1)  # (B, 3, C, H, W)
    return make_grid(triples.flatten(0, 1), nrow=3, padding=padding, pad_value=1.0)


def plot_psnr_vs_context(
    results: dict[str, dict[str, dict[str, float | None]]], labels: dict[str, str], path: str | Path, title: str = ""
) -> None:
    """PSNR against the number of observed pixels, one line per method, as a PNG (matplotlib, headless).

    ``results`` is ``evaluate_inpainting``'s ``{setting: {method: {"psnr": …}}}``;
    settings that are not pixel counts (top half, full) are left out of the x axis.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    counts = sorted((int(setting), setting) for setting in results if setting.isdigit())
    if not counts:
        raise ValueError(f"no pixel-count settings to plot in {sorted(results)}")
    figure, axes = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for method, label in labels.items():
        points = [(count, results[setting][method]["psnr"]) for count, setting in counts]
        points = [(count, value) for count, value in points if value is not None]
        if points:
            axes.plot(*zip(*points), marker="o", label=label)
    axes.set(xscale="log", xlabel="observed pixels (of the image's H·W)", ylabel="PSNR (dB), all pixels", title=title)
    axes.set_xticks([count for count, _ in counts], [str(count) for count, _ in counts])
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    plt.close(figure)

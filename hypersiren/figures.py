"""Every figure hypersiren writes: image grids, labelled tile figures and line plots (matplotlib, PNG).

Plots and labelled grids go straight to a PNG with matplotlib's headless Agg backend, so
programs run on machines without a display; unlabelled grids are tensors for TensorBoard.
"""

import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from torch import Tensor
from torchvision.utils import make_grid

from hypersiren.errors import NonFiniteResultError
from hypersiren.files import write_atomically

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

# Missing pixels are drawn magenta, not grey: a grey pixel can be an observed one (all of a grayscale photo's
# are), and faces and photos seldom hold pure magenta. Figures say so in a legend (MISSING_LEGEND).
MISSING_COLOUR = (1.0, 0.0, 1.0)
MISSING_LEGEND = {"missing pixel (not observed)": MISSING_COLOUR}
SOFTWARE = "hypersiren"  # the Software text of every PNG written here: what a program may replace
DPI = 150  # PNG pixels per figure inch


def context_image(image: Tensor, mask: Tensor) -> Tensor:
    """Observed pixels of ``image (B, C, H, W)`` in [0, 1] (C = 1 or 3) as RGB ``(B, 3, H, W)``, the missing
    ones ``MISSING_COLOUR``."""
    missing = torch.tensor(MISSING_COLOUR, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return torch.where(mask, image.expand(-1, 3, -1, -1), missing)


def comparison_grid(image: Tensor, mask: Tensor, prediction: Tensor, padding: int = 2) -> Tensor:
    """One row per image: context | prediction | truth. All inputs in [0, 1]; returns ``(C, H', W')``."""
    if prediction.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"prediction {tuple(prediction.shape)} must match image {tuple(image.shape)}")
    columns = [context_image(image, mask), prediction.expand(-1, 3, -1, -1), image.expand(-1, 3, -1, -1)]
    triples = torch.stack(columns, dim=1)  # (B, 3, 3, H, W): RGB, as the context's missing pixels are
    return make_grid(triples.flatten(0, 1), nrow=3, padding=padding, pad_value=1.0)


def save_labeled_grid(
    tiles: Tensor,
    path: str | Path,
    column_labels: list[str],
    row_labels: list[str] | None = None,
    tile_inches: float = 1.4,
    pixel_scale: float = 0.0,
    legend: dict[str, tuple[float, float, float]] | None = None,
) -> None:
    """Tiles ``(rows * columns, C, H, W)`` in [0, 1], row-major, as one PNG with a label over each column.

    Pixels are drawn as blocks (nearest neighbour), so a 32×32 image stays legible as pixels.
    ``pixel_scale`` enlarges the tiles beyond ``tile_inches``, to about that many PNG pixels per tile
    pixel; the labels keep their size. ``legend`` maps a label to the RGB colour it explains
    (``MISSING_LEGEND``), drawn under the tiles.
    """
    _require_finite(tiles, path)
    tile_inches = max(tile_inches, pixel_scale * max(tiles.shape[-2:]) / DPI)
    columns = len(column_labels)
    if tiles.shape[0] % columns:
        raise ValueError(f"{tiles.shape[0]} tiles do not fill rows of {columns} columns")
    rows = tiles.shape[0] // columns
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    figure, axes = _pyplot().subplots(
        rows, columns, figsize=(tile_inches * columns, tile_inches * rows + 0.3), squeeze=False, layout="constrained"
    )
    for index, (axis, tile) in enumerate(zip(axes.flat, tiles.detach().float().cpu().clamp(0, 1))):
        gray = tile.shape[0] == 1
        pixels = (tile[0] if gray else tile.permute(1, 2, 0)).numpy()
        axis.imshow(pixels, cmap="gray" if gray else None, vmin=0, vmax=1)
        axis.set(xticks=[], yticks=[])
        if index < columns:
            axis.set_title(column_labels[index], fontsize="small")
        if row_labels is not None and index % columns == 0:
            axis.set_ylabel(row_labels[index // columns], fontsize="small")
    if legend:
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=colour, edgecolor="black", label=label) for label, colour in legend.items()]
        figure.legend(handles=handles, loc="outside lower center", fontsize="small", frameon=False)
    _save(figure, path)


def series_figure(
    truth: Tensor,
    mask: Tensor,
    predictions: dict[str, Tensor],
    row_labels: list[str] | None = None,
    truth_fine: Tensor | None = None,
) -> "Figure":
    """One panel per series: the truth (grey), the observed samples (dots) and each prediction (a line).

    ``truth (B, 1, T)`` and ``predictions`` ``(B, 1, T')`` in [0, 1] (a prediction may be rendered on a finer
    grid: each is drawn at its own cell centres), ``mask (B, 1, T)`` bool. ``truth_fine`` is the truth on a
    finer grid, drawn instead of ``truth`` where given. The series analogue of a context | prediction | truth
    grid; returned open, for ``save_figure`` or TensorBoard's ``add_figure``.
    """
    _require_finite(torch.cat([truth.flatten(), *(p.flatten() for p in predictions.values())]), "a series figure")
    rows = truth.shape[0]
    figure, axes = _pyplot().subplots(rows, 1, figsize=(7.0, 1.5 * rows + 0.4), squeeze=False, layout="constrained")
    shown = truth if truth_fine is None else truth_fine
    for row, axis in enumerate(axes[:, 0]):
        axis.plot(*_timed(shown[row, 0]), color="0.6", linewidth=2.5, label="truth")
        for (label, prediction), colour in zip(predictions.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            axis.plot(*_timed(prediction[row, 0]), color=colour, linewidth=1.0, label=label)
        times, values = _timed(truth[row, 0])
        seen = mask[row, 0].cpu().numpy()
        axis.plot(times[seen], values[seen], "o", color="black", markersize=3.5, label="observed")
        axis.set(xlim=(-1, 1), ylim=(-0.02, 1.02), yticks=[])
        if row_labels is not None:
            axis.set_ylabel(row_labels[row], rotation=0, ha="right", va="center")
        if row < rows - 1:
            axis.set(xticks=[])
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncol=2 + len(predictions), frameon=False)
    axes[-1, 0].set_xlabel("time (cell centres in [-1, 1])")
    return figure


def _timed(values: Tensor) -> tuple["np.ndarray", "np.ndarray"]:
    """``(T,)`` -> the cell-centre times in [-1, 1] and the values, as NumPy arrays for matplotlib."""
    length = values.shape[-1]
    times = (torch.arange(length, dtype=torch.float64) + 0.5) * (2.0 / length) - 1.0
    return times.numpy(), values.detach().double().cpu().numpy()


def save_figure(figure: "Figure", path: str | Path) -> None:
    """A figure from this module (e.g. ``series_figure``) as a PNG, written atomically, then closed."""
    _save(figure, path)


def plot_curves(
    curves: dict[str, list[float]], path: str | Path, y_label: str = "PSNR (dB)", x_label: str = "step"
) -> None:
    """Named curves against their index as a PNG, each labelled with its final value."""
    if not any(math.isfinite(value) for values in curves.values() for value in values):
        raise ValueError("plot_curves needs at least one finite value")
    figure, axes = _pyplot().subplots(figsize=(6.4, 4.0), layout="constrained")
    for name, values in curves.items():
        axes.plot(values, label=f"{name}: {values[-1]:.2f}")
    axes.set(xlabel=x_label, ylabel=y_label)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _save(figure, path)


def plot_psnr_vs_context(
    results: dict[str, dict[str, dict[str, float | None]]],
    labels: dict[str, str],
    path: str | Path,
    title: str = "",
    points: str = "pixels (of the image's H·W)",
) -> None:
    """PSNR against the number of observed ``points`` (pixels, a series' samples), one line per method, as a PNG.

    ``results`` is ``evaluate_inpainting``'s ``{setting: {method: {"psnr": …}}}``;
    settings that are not pixel counts (top half, full) are left out of the x axis.
    """
    counts = sorted((int(setting), setting) for setting in results if setting.isdigit())
    if not counts:
        raise ValueError(f"no pixel-count settings to plot in {sorted(results)}")
    figure, axes = _pyplot().subplots(figsize=(6.4, 4.2), layout="constrained")
    for method, label in labels.items():
        scored = [(count, results[setting][method]["psnr"]) for count, setting in counts]
        scored = [(count, value) for count, value in scored if value is not None]
        if scored:
            axes.plot(*zip(*scored), marker="o", label=label)
    axes.set(xscale="log", xlabel=f"observed {points}", ylabel="PSNR (dB), every point", title=title)
    axes.set_xticks([count for count, _ in counts], [str(count) for count, _ in counts])
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _save(figure, path)


def _pyplot() -> ModuleType:
    """pyplot on the headless Agg backend, imported on first use: a program that draws no plot
    (train.py logs tensors) does not pay its 0.4 s import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _save(figure: "Figure", path: str | Path) -> None:
    try:
        metadata = {"Software": SOFTWARE}
        write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=DPI, metadata=metadata))
    finally:
        _pyplot().close(figure)


def save_png(images: Tensor, path: str | Path) -> None:
    """``images (B, C, H, W)`` or ``(C, H, W)`` in [0, 1] as one PNG (a grid if B > 1), written atomically."""
    _require_finite(images, path)
    grid = make_grid(images.detach().float().cpu()).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)  # as save_image
    picture = Image.fromarray(grid.permute(1, 2, 0).numpy())
    marked = PngInfo()
    marked.add_text("Software", SOFTWARE)
    write_atomically(path, lambda file: picture.save(file, format="png", pnginfo=marked))


def written_here(path: str | Path) -> bool:
    """Whether ``path`` is a PNG that hypersiren wrote (``save_png``, a figure), which a program may replace: a
    user's own file of the same name never is."""
    try:
        with Image.open(path) as picture:
            return picture.format == "PNG" and picture.info.get("Software") == SOFTWARE
    except (OSError, ValueError):
        return False


def _require_finite(images: Tensor, path: str | Path) -> None:
    """``NonFiniteResultError`` for images holding NaN or inf: saved, they would be black pixels that look like a
    result (a PNG has no NaN)."""
    bad = int((~torch.isfinite(images)).sum())
    if bad:
        raise NonFiniteResultError(
            f"refusing to write {path}: {bad} of its {images.numel()} values are NaN or inf (a diverged or damaged "
            "model?)"
        )


def display_scale(values: Tensor, quantile: float = 0.99) -> float:
    """The ``quantile`` of |values|: a display range that ignores a few outlier pixels."""
    return max(float(torch.quantile(values.abs().flatten().float(), quantile)), 1e-12)


def magnitude_for_display(values: Tensor, scale: float | None = None) -> Tensor:
    """Non-negative ``values`` divided by ``scale`` (default ``display_scale(values)``), clamped to [0, 1]."""
    scale = display_scale(values) if scale is None else scale
    return (values / scale).clamp(0.0, 1.0)


def signed_for_display(values: Tensor, scale: float | None = None) -> Tensor:
    """Signed ``values`` to [0, 1]: 0 at mid-gray, ±``scale`` (default ``display_scale(values)``) at the ends."""
    scale = display_scale(values) if scale is None else scale
    return 0.5 + 0.5 * (values / scale).clamp(-1.0, 1.0)


def signed_distance_for_display(values: Tensor, spacing: float = 0.1, line_width: float | None = None) -> Tensor:
    """A signed distance slice ``(H, W)`` as the usual SDF picture ``(3, H, W)``: orange outside,
    blue inside, darker bands every ``spacing`` (isolines), and the zero level set in black."""
    outside = torch.tensor([0.90, 0.55, 0.25], device=values.device).view(3, 1, 1)
    inside = torch.tensor([0.25, 0.50, 0.85], device=values.device).view(3, 1, 1)
    bands = 0.8 + 0.2 * torch.cos(2 * math.pi * values / spacing)
    picture = torch.where(values > 0, outside, inside) * bands
    # The zero line is about one pixel wide: |Φ| below half a pixel's size in world units (Φ is a distance).
    line_width = 1.0 / values.shape[-1] if line_width is None else line_width
    return torch.where(values.abs() < line_width, torch.zeros_like(picture), picture).clamp(0.0, 1.0)

"""Result files of the single-signal programs: tables (Markdown + JSON), curves (CSV + a
plotted PNG) and derivative images scaled for display.

Plots are drawn with Pillow (a torchvision dependency) so no plotting library is needed.
"""

import json
import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import make_grid

# Colour-blind-safe (Okabe-Ito) line colours, in curve order.
_COLOURS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0)]


def write_json(value: Any, path: str | Path) -> None:
    """``value`` (numbers, strings, lists, dicts) as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def start_run(args: Any) -> Path:
    """Create the program's ``args.out`` folder and save its arguments there as ``config.json``."""
    out = Path(args.out)
    write_json(vars(args), out / "config.json")
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows with the same keys as a Markdown table; floats to 4 significant digits, None as "—"."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    columns = list(rows[0])

    def cell(value: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_table(rows: list[dict[str, Any]], out_dir: str | Path, name: str, title: str) -> str:
    """Write ``name.md`` (titled Markdown table) and ``name.json`` (the rows) under ``out_dir``; return the Markdown."""
    markdown = f"## {title}\n\n{markdown_table(rows)}\n"
    write_results(rows, markdown, out_dir, name)
    return markdown


def write_results(summary: Any, markdown: str, out_dir: str | Path, name: str) -> None:
    """Write ``name.json`` (``summary``) and ``name.md`` (``markdown``) under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.md").write_text(markdown)
    write_json(summary, out_dir / f"{name}.json")


def write_curves_csv(curves: dict[str, list[float]], path: str | Path) -> None:
    """Curves of equal length as CSV columns, one row per step (first column ``step``)."""
    lengths = {len(values) for values in curves.values()}
    if len(lengths) != 1:
        raise ValueError(f"curves must have equal lengths, got {sorted(lengths)}")
    lines = ["step," + ",".join(curves)]
    for step in range(lengths.pop()):
        lines.append(f"{step}," + ",".join(f"{values[step]:.4f}" for values in curves.values()))
    Path(path).write_text("\n".join(lines) + "\n")


def _nice_step(span: float, ticks: int) -> float:
    """A 1-2-5 × 10^k tick spacing giving about ``ticks`` ticks over ``span``."""
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)


def plot_curves(
    curves: dict[str, list[float]],
    x_label: str = "step",
    y_label: str = "PSNR (dB)",
    width: int = 720,
    height: int = 420,
) -> Tensor:
    """Line plot of named curves (x = index) with axes, ticks and a legend with final values.

    Returns ``(3, height, width)`` in [0, 1].
    """
    all_values = [value for values in curves.values() for value in values if math.isfinite(value)]
    if not all_values:
        raise ValueError("plot_curves needs at least one finite value")
    steps = max(len(values) for values in curves.values())
    y_step = _nice_step(max(all_values) - min(all_values) or 1.0, 6)
    y_low, y_high = math.floor(min(all_values) / y_step) * y_step, math.ceil(max(all_values) / y_step) * y_step
    x_step = _nice_step(max(steps - 1, 1), 6)

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    left, right, top, bottom = 64, width - 16, 32, height - 48

    def to_x(step: float) -> float:
        return left + (right - left) * step / max(steps - 1, 1)

    def to_y(value: float) -> float:
        return bottom - (bottom - top) * (value - y_low) / (y_high - y_low)

    for tick in torch.arange(y_low, y_high + y_step / 2, y_step).tolist():
        draw.line([(left, to_y(tick)), (right, to_y(tick))], fill=(225, 225, 225))
        draw.text((left - 6, to_y(tick)), f"{tick:g}", fill="black", font=font, anchor="rm")
    for tick in torch.arange(0, steps, x_step).tolist():
        draw.line([(to_x(tick), top), (to_x(tick), bottom)], fill=(225, 225, 225))
        draw.text((to_x(tick), bottom + 6), f"{tick:g}", fill="black", font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2, height - 6), x_label, fill="black", font=font, anchor="md")
    draw.text((8, 8), y_label, fill="black", font=font, anchor="lt")

    for index, (name, values) in enumerate(curves.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        points = [(to_x(step), to_y(value)) for step, value in enumerate(values) if math.isfinite(value)]
        draw.line(points, fill=colour, width=2)
        # Bottom right: rising curves (PSNR over steps) leave that corner empty.
        legend_x, legend_y = right - 220, bottom - 14 - 20 * (len(curves) - 1 - index)
        draw.line([(legend_x, legend_y), (legend_x + 24, legend_y)], fill=colour, width=3)
        draw.text((legend_x + 30, legend_y), f"{name}: {values[-1]:.2f}", fill="black", font=font, anchor="lm")
    return TF.to_dtype(TF.pil_to_tensor(image), torch.float32, scale=True)


def labeled_grid(
    tiles: Tensor, column_labels: list[str], row_labels: list[str] | None = None, min_tile: int = 128, padding: int = 2
) -> Tensor:
    """Tiles ``(rows * columns, C, H, W)`` in [0, 1], row-major, as one labelled figure ``(3, H', W')``.

    Small tiles are enlarged by an integer factor (nearest neighbour, pixels stay
    visible) to at least ``min_tile`` pixels so that labels fit above them.
    """
    columns = len(column_labels)
    if tiles.shape[0] % columns:
        raise ValueError(f"{tiles.shape[0]} tiles do not fill rows of {columns} columns")
    factor = max(1, math.ceil(min_tile / tiles.shape[-1]))
    tiles = tiles.float().cpu().repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    grid = TF.to_pil_image(make_grid(tiles, nrow=columns, padding=padding, pad_value=1.0))
    font = ImageFont.load_default(size=14)
    label_width = 0 if row_labels is None else 12 + max(int(font.getlength(label)) for label in row_labels)
    top = 24
    canvas = Image.new("RGB", (grid.width + label_width, grid.height + top), "white")
    canvas.paste(grid, (label_width, top))
    draw = ImageDraw.Draw(canvas)
    tile_height, tile_width = tiles.shape[-2:]
    for index, label in enumerate(column_labels):
        centre = label_width + padding + index * (tile_width + padding) + tile_width / 2
        draw.text((centre, top / 2), label, fill="black", font=font, anchor="mm")
    for index, label in enumerate(row_labels or []):
        centre = top + padding + index * (tile_height + padding) + tile_height / 2
        draw.text((label_width - 6, centre), label, fill="black", font=font, anchor="rm")
    return TF.to_dtype(TF.pil_to_tensor(canvas), torch.float32, scale=True)


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

"""Held-out inpainting evaluation: HyperSiren and the classical fills on the same seeded masks."""

import hashlib
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from hypersiren.across.baseline_fill import CLASSICAL_FILLS, classical_fill, mean_image_fill
from hypersiren.across.context import context_mask, protocol_settings
from hypersiren.across.data import DataConfig, dataset_root
from hypersiren.across.model import HyperSiren
from hypersiren.core.checks import require_tensor
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import ConfigError
from hypersiren.results import earlier_result, markdown_table

METHODS = {
    "hypersiren": "HyperSiren (raw rendering)",
    "hypersiren_pasted": "HyperSiren, observed pixels pasted",
    "mean_image": "Mean training image",
    "nearest": "Nearest (scipy griddata)",
    "linear": "Linear (scipy griddata, nearest outside the hull)",
    "biharmonic": "Biharmonic (scikit-image inpaint_biharmonic)",
    "pixel_unet": "Ablation: same U-Net, pixel head (raw)",
    "pixel_unet_pasted": "Ablation: same U-Net, pixel head, pasted",
}
ABLATION_METHODS = ("pixel_unet", "pixel_unet_pasted")  # rows only when an ablation run is evaluated beside
METRICS = {"psnr": "all pixels", "psnr_unobserved": "unobserved pixels only"}


def seeded_masks(setting: str, count: int, shape: tuple[int, ...], seed: int) -> Tensor:
    """The masks of one setting for ``count`` signals on a ``shape`` grid, independent of batch size and device."""
    generator = torch.Generator().manual_seed(seed * 1_009 + sum(map(ord, setting)))
    return context_mask(setting, count, shape, generator)


@torch.no_grad()
def evaluate_inpainting(
    model: HyperSiren,
    images: Tensor,
    mean_image: Tensor | None,
    settings: tuple[str, ...] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
    ablation: HyperSiren | None = None,
    supersample: int | None = None,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean per-image PSNR (dB, on [0, 1]) over all and over unobserved pixels.

    Returns ``{setting: {method: {metric: value}}}``.

    ``images (N, C, H, W)`` uint8; ``mean_image (C, H, W)`` in [-1, 1] (None: no mean-image row); ``settings``
    default to ``protocol_settings`` of the images' size. With every pixel
    observed ("full") a fill is exact and unobserved pixels do not exist: those are None.
    ``ablation`` (a model trained alike, e.g. ``decoder="pixel"``) is scored on the same masks;
    ``supersample`` is ``HyperSiren.inpaint``'s (None: the model's own).
    """
    _require_uint8(images, "images")
    left_out = {*(ABLATION_METHODS if ablation is None else ()), *(("mean_image",) if mean_image is None else ())}
    listed = [method for method in METHODS if method not in left_out]
    device = next(model.parameters()).device
    count, _, height, width = images.shape
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for setting in tqdm(settings or protocol_settings((height, width)), desc="evaluating", disable=not progress):
        masks = seeded_masks(setting, count, (height, width), seed)
        full = bool(masks.all())
        methods = [m for m in listed if not full or m in ("hypersiren", "pixel_unet")]
        sums = {method: torch.zeros(len(METRICS), dtype=torch.float64) for method in methods}
        for start in range(0, count, batch_size):
            image = to_model_space(images[start : start + batch_size].to(device))
            mask = masks[start : start + batch_size].to(device)
            rendered = {"hypersiren": model.inpaint(image, mask, raw=True, supersample=supersample)}
            if ablation is not None:
                rendered["pixel_unet"] = ablation.inpaint(image, mask, raw=True)
            predictions = dict(rendered)
            if not full:
                predictions |= {f"{method}_pasted": torch.where(mask, image, raw) for method, raw in rendered.items()}
                if mean_image is not None:
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
            for method in listed
        }
    return results


def inpainting_table(results: dict[str, dict[str, dict[str, float | None]]], metric: str = "psnr") -> str:
    """Methods as rows, context settings as columns; the best number of each column in bold."""
    best = {
        s: max((v[metric] for v in by_method.values() if v[metric] is not None), default=None)
        for s, by_method in results.items()
    }
    rows = [
        {f"PSNR (dB), {METRICS[metric]}": label} | {s: _cell(results[s][method][metric], best[s]) for s in results}
        for method, label in METHODS.items()
        if method in next(iter(results.values()))
    ]
    return markdown_table(rows)


SCALE_METHODS = {
    "hypersiren": "HyperSiren rendered at the scale",
    "hypersiren_bicubic": "HyperSiren's own-size completion, bicubic",
    "pixel_unet_bicubic": "Ablation pixel U-Net's completion, bicubic",
    "bicubic": "Bicubic of the input (fewer pixels: of its biharmonic fill)",
}


@torch.no_grad()
def evaluate_scales(
    model: HyperSiren,
    low: Tensor,
    high: dict[float, Tensor],
    settings: tuple[str, ...] | None = None,
    ablation: HyperSiren | None = None,
    seed: int = 0,
    batch_size: int = 32,
    supersample: int | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Arbitrary-scale rendering: mean per-image PSNR (dB, on [0, 1]) against the true larger images.

    ``low (N, C, h, w)`` uint8 is the input; ``high`` maps each scale to the same images resized
    from the same originals, ``(N, C, H, W)`` uint8 with ``H ≈ scale * h``. The model sees the
    pixels of ``setting``'s seeded mask of ``low`` and renders at ``(H, W)``; the others upsample
    a completion at ``low``'s size bicubically. ``settings`` default to all pixels and ``scale_settings``'s
    sparse one. Returns ``{setting: {scale: {method: psnr}}}``.
    """
    for name, images in {"low": low, **{f"high[{scale}]": truths for scale, truths in high.items()}}.items():
        _require_uint8(images, name)
    device = next(model.parameters()).device
    methods = [m for m in SCALE_METHODS if ablation is not None or m != "pixel_unet_bicubic"]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for setting in settings or scale_settings(*low.shape[-2:]):
        masks = seeded_masks(setting, len(low), low.shape[2:], seed=seed)
        sums = {scale: dict.fromkeys(methods, 0.0) for scale in high}
        for start in range(0, len(low), batch_size):
            image = to_model_space(low[start : start + batch_size].to(device))
            mask = masks[start : start + batch_size].to(device)
            own_size = {"hypersiren_bicubic": model.inpaint(image, mask, supersample=supersample)}
            own_size["bicubic"] = image if bool(mask.all()) else classical_fill("biharmonic", image, mask)
            if ablation is not None:
                own_size["pixel_unet_bicubic"] = ablation.inpaint(image, mask)
            for scale, truths in high.items():
                size = tuple(truths.shape[-2:])
                truth = to_unit_range(to_model_space(truths[start : start + batch_size].to(device)))
                predictions = {"hypersiren": model.inpaint(image, mask, size=size, supersample=supersample)} | {
                    method: F.interpolate(completion, size=size, mode="bicubic", align_corners=False)
                    for method, completion in own_size.items()
                }
                for method, prediction in predictions.items():
                    sums[scale][method] += float(psnr(to_unit_range(prediction), truth).sum())
        results[setting] = {
            f"{scale:g}": {method: total / len(low) for method, total in by_method.items()}
            for scale, by_method in sums.items()
        }
    return results


def _require_uint8(images: Tensor, name: str) -> None:
    """``TypeError`` unless ``images`` are uint8 in [0, 255], as ``load_images`` gives: model-space floats would be
    mapped again and scored as a dark, flat image, a number that looks like a result."""
    if require_tensor(images, name).dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 images in [0, 255] (as load_images gives), got {images.dtype}")


def require_informative(images: Tensor, source: str) -> None:
    """``ConfigError`` if some ``images (N, C, H, W)`` are one flat colour: every fill copies such an image exactly
    from any pixel of it, so it scores the 100 dB cap, a perfect number that measures nothing."""
    flat = images.flatten(1)
    constant = (flat.amax(dim=1) == flat.amin(dim=1)).nonzero().flatten().tolist()
    if constant:
        raise ConfigError(
            f"{len(constant)} of the {len(images)} images of {source} are one flat colour (first: image "
            f"{constant[0]}): any fill copies them exactly and scores a meaningless 100 dB; remove them from the split"
        )


def scale_settings(height: int, width: int) -> tuple[str, str]:
    """What arbitrary-scale rendering starts from: all pixels, and 10% of them (100 at 32x32)."""
    return "full", protocol_settings((height, width))[1]


def scales_table(results: dict[str, dict[str, float]], low_size: int, setting: str) -> str:
    """One setting of ``evaluate_scales``'s results: methods as rows, scales as columns, best in bold."""
    scales = list(results)
    best = {scale: max(results[scale].values()) for scale in scales}
    title = f"{low_size}² input ({'all pixels' if setting == 'full' else setting + ' pixels'}), PSNR (dB) vs the truth"
    rows = [
        {title: label}
        | {
            f"×{scale} ({round(float(scale) * low_size)}²)": _cell(results[scale][method], best[scale])
            for scale in scales
        }
        for method, label in SCALE_METHODS.items()
        if method in results[scales[0]]
    ]
    return markdown_table(rows)


def _cell(value: float | None, best: float | None) -> str | None:
    """A table cell: dB to two decimals, in bold when it is its column's best; None stays None ("—")."""
    return None if value is None else (f"**{value:.2f}**" if value == best else f"{value:.2f}")


def require_not_fuller(path: Path, measured: dict[str, Any], scales: list[str]) -> None:
    """``ConfigError`` if the result file ``path`` measured what an evaluation (``measured``: its ``num_images``,
    ``data_root``, ``seed``, ``ablation``; ``scales``) would lose by replacing it: more images, another data root or
    seed, an ablation or scales; or if ``path`` is not an evaluation at all (``results.earlier_result``). A run's
    results must not shrink or change meaning because someone evaluated a subset, e.g. a tracked
    ``pretrained/*/eval/metrics.json``."""
    saved = earlier_result(path, "results")
    if saved is None:
        return
    lost = []
    if isinstance(saved.get("num_images"), int) and saved["num_images"] > measured["num_images"]:
        lost.append(f"{saved['num_images']} images, this one {measured['num_images']}")
    if isinstance(saved.get("data_root"), str) and _resolved(saved["data_root"]) != _resolved(measured["data_root"]):
        lost.append(f"data root {saved['data_root']}, this one {measured['data_root']}")
    if "seed" in saved and "seed" in measured and saved["seed"] != measured["seed"]:
        lost.append(f"seed {saved['seed']}, this one {measured['seed']}")
    if saved.get("ablation") and not _same_run(saved["ablation"], measured.get("ablation")):
        lost.append(f"ablation {saved['ablation']}, this one {measured.get('ablation') or 'none'}")
    by_setting = saved.get("scales")
    saved_scales = set(next(iter(by_setting.values()), {})) if isinstance(by_setting, dict) and by_setting else set()
    if saved_scales - set(scales):
        lost.append(f"scales {', '.join(sorted(saved_scales - set(scales)))}, this one {', '.join(scales) or 'none'}")
    if lost:
        raise ConfigError(
            f"{path} holds a fuller evaluation ({'; '.join(lost)}): pass --replace to replace it, or --out elsewhere"
        )


def _same_run(saved: str, given: str | None) -> bool:
    """Whether ``given`` names the run folder ``saved`` names: saved paths are relative to wherever that evaluation
    ran, so the same folder name counts as the same run."""
    return given is not None and (
        Path(saved).resolve() == Path(given).resolve() or Path(saved).name == Path(given).name
    )


def _resolved(root: str) -> Path:
    return dataset_root(DataConfig(root=root))


def root_tag(root: str) -> str:
    """A name part for results measured on the dataset folder ``root`` rather than the run's own, e.g.
    ``root-celeba_test-1a2b3c``: the folder's name and a digest of its path, so that such results replace neither
    the run's own nor those of another folder of the same name."""
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(root).name).strip("-.") or "folder"
    return f"root-{folder}-{hashlib.sha256(root.encode()).hexdigest()[:6]}"

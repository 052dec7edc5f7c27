"""Held-out evaluation: HyperSiren, its ablation and the classical fills on the same seeded masks.

One loop (``mean_psnrs``) scores every table: the inpainting protocol (``evaluate_inpainting``), rendering
at other scales (``evaluate_scales``) and the precision choices (eval/precision.py); each supplies only
its rows' predictions and truths. Signals are images (uint8) or series (float in [-1, 1]).
"""

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from hypersiren.across.baseline_fill import classical_fill, mean_image_fill
from hypersiren.across.config import DataConfig
from hypersiren.across.context import context_mask, protocol_settings
from hypersiren.across.data import dataset_root, model_space
from hypersiren.across.model import HyperSiren
from hypersiren.across.priors import DataPriors, select_priors
from hypersiren.core.checks import require_tensor
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_unit_range
from hypersiren.errors import ConfigError
from hypersiren.results import earlier_result, markdown_table

LEARNED_METHODS = {
    "hypersiren": "HyperSiren (raw rendering)",
    "hypersiren_pasted": "HyperSiren, observed pixels pasted",
    "mean_image": "Mean training image",
    "gaussian": "Gaussian conditional mean (PCA of the training split)",
    "neighbours": "Mean of the nearest training images",
}
ABLATION_LABELS = {
    "pixel_unet": "Ablation: same U-Net, pixel head (raw)",
    "pixel_unet_pasted": "Ablation: same U-Net, pixel head, pasted",
}
ABLATION_METHODS = tuple(ABLATION_LABELS)  # rows only when an ablation run is evaluated beside
METRICS = {"psnr": "all pixels", "psnr_unobserved": "unobserved pixels only"}
# The classical rows of each dimension, between the learned ones and the ablation's; images keep the labels
# their tables always had.
CLASSICAL_METHODS = {
    1: {
        "nearest": "Nearest sample",
        "linear": "Linear (np.interp; end values held outside the observed span)",
        "periodic": "Periodic linear (np.interp over the period: a closed outline)",
        "cubic": "Cubic spline (scipy CubicSpline, natural)",
    },
    2: {
        "nearest": "Nearest (scipy griddata)",
        "linear": "Linear (scipy griddata, nearest outside the hull)",
        "biharmonic": "Biharmonic (scikit-image inpaint_biharmonic)",
    },
    3: {
        "nearest": "Nearest (scipy griddata)",
        "linear": "Linear (scipy griddata, nearest outside the hull)",
        "rbf": "Thin-plate RBF (scipy RBFInterpolator)",
    },
}


def method_labels(dims: int) -> dict[str, str]:
    """Every row an inpainting table of ``dims``-D signals can have, in table order, with its label."""
    learned = LEARNED_METHODS
    if dims != 2:
        word = "series" if dims == 1 else "volume"
        learned = learned | {
            "hypersiren_pasted": "HyperSiren, observed points pasted",
            "mean_image": f"Mean training {word}",
            "neighbours": f"Mean of the nearest training {word}",
        }
    ablation = (
        ABLATION_LABELS if dims == 2 else {m: label.replace("pixel", "cell") for m, label in ABLATION_LABELS.items()}
    )
    return learned | CLASSICAL_METHODS[dims] | ablation


METHODS = method_labels(2)  # the image tables' rows
Predict = Callable[[Tensor, Tensor, slice, str], dict[Any, tuple[Tensor, Tensor]]]


def seeded_masks(setting: str, count: int, shape: tuple[int, ...], seed: int) -> Tensor:
    """The masks of one setting for ``count`` signals on a ``shape`` grid, independent of batch size and device."""
    generator = torch.Generator().manual_seed(seed * 1_009 + sum(map(ord, setting)))
    return context_mask(setting, count, shape, generator)


@torch.no_grad()
def mean_psnrs(
    signals: Tensor,
    settings: tuple[str, ...],
    predict: Predict,
    device: torch.device | str,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "evaluating",
) -> dict[str, dict[Any, dict[str, float | None]]]:
    """The one evaluation loop: mean per-signal PSNR (dB, on [0, 1]) of every row ``predict`` returns, on the
    seeded masks of each setting; the inpainting, any-scale and precision tables are all made by it.

    ``signals (N, C, *S)``: uint8 images or float signals in [-1, 1]. ``predict(signal, mask, rows, setting)``
    gets a batch in model space, its masks, its rows of ``signals`` and the setting, and returns ``{row:
    (prediction, truth)}`` in model space (a truth may be another, e.g. a finer grid's). Returns ``{setting: {row:
    {metric: dB}}}`` with ``METRICS``' two metrics; the unobserved one is None where every point is observed, or
    where a row's prediction is on another grid than its mask.
    """
    _require_signals(signals, "signals")
    count, _, *grid = signals.shape
    results: dict[str, dict[Any, dict[str, float | None]]] = {}
    for setting in tqdm(settings, desc=desc, disable=not progress):
        masks = seeded_masks(setting, count, tuple(grid), seed)
        full = bool(masks.all())
        sums: dict[Any, Tensor] = {}
        unobserved: dict[Any, bool] = {}  # whether a row's unobserved points are scored: on the mask's grid only
        for start in range(0, count, batch_size):
            rows = slice(start, start + batch_size)
            signal, mask = model_space(signals[rows].to(device)), masks[rows].to(device)
            for key, (prediction, truth) in predict(signal, mask, rows, setting).items():
                prediction, truth = to_unit_range(prediction), to_unit_range(truth)
                unobserved[key] = not full and prediction.shape[2:] == mask.shape[2:]
                scores = [psnr(prediction, truth).sum()]
                scores.append(psnr(prediction, truth, where=~mask).sum() if unobserved[key] else torch.zeros(()))
                sums[key] = sums.get(key, 0) + torch.stack(scores).double().cpu()
        results[setting] = {
            key: {
                "psnr": float(both[0]) / count,
                "psnr_unobserved": float(both[1]) / count if unobserved[key] else None,
            }
            for key, both in sums.items()
        }
    return results


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
    priors: DataPriors | None = None,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean per-signal PSNR (dB, on [0, 1]) over all and over unobserved points, beside the classical fills and
    the data-driven ``priors`` (``priors.DataPriors`` of the training split, with settings for each of ``settings``).

    Returns ``{setting: {method: {metric: value}}}``.

    ``images (N, C, *S)`` uint8 images or float signals in [-1, 1]; ``mean_image (C, *S)`` in [-1, 1] (None: no
    mean-image row); ``settings`` default to ``protocol_settings`` of the grid. With every point
    observed ("full") a fill is exact and unobserved points do not exist: those are None.
    ``ablation`` (a model trained alike, e.g. ``decoder="pixel"``) is scored on the same masks;
    ``supersample`` is ``HyperSiren.inpaint``'s (None: the model's own).
    """
    _require_signals(images, "images")
    grid = tuple(images.shape[2:])
    classical = CLASSICAL_METHODS[len(grid)]
    left_out = {*(ABLATION_METHODS if ablation is None else ()), *(("mean_image",) if mean_image is None else ())}
    left_out |= set(DataPriors.METHODS) if priors is None else set()
    listed = [method for method in method_labels(len(grid)) if method not in left_out]
    device = next(model.parameters()).device

    def predict(image: Tensor, mask: Tensor, rows: slice, setting: str) -> dict[str, tuple[Tensor, Tensor]]:
        rendered = {"hypersiren": model.inpaint(image, mask, raw=True, supersample=supersample)}
        if ablation is not None:
            rendered["pixel_unet"] = ablation.inpaint(image, mask, raw=True)
        predictions = dict(rendered)
        if not bool(mask.all()):
            predictions |= {f"{method}_pasted": torch.where(mask, image, raw) for method, raw in rendered.items()}
            if mean_image is not None:
                predictions["mean_image"] = mean_image_fill(mean_image.to(image.device), image, mask)
            if priors is not None:
                predictions |= {method: priors.fill(method, setting, image, mask) for method in priors.METHODS}
            predictions |= {method: classical_fill(method, image, mask) for method in classical}
        return {method: (prediction, image) for method, prediction in predictions.items()}

    scored = mean_psnrs(images, settings or protocol_settings(grid), predict, device, seed, batch_size, progress)
    empty = dict.fromkeys(METRICS)
    return {setting: {m: rows.get(m, empty) for m in listed} for setting, rows in scored.items()}


def fit_data_priors(train: Tensor, settings: tuple[str, ...], seed: int = 0) -> DataPriors:
    """The Gaussian and nearest-neighbour baselines of ``train (N, C, *S)`` (a training split, uint8 or float), their
    settings chosen for each of ``settings`` on a fold held out of ``train`` (with masks of another seed than the
    scored ones): never on the split that is scored."""
    signals = model_space(train)
    grid = tuple(signals.shape[2:])
    sparse = tuple(setting for setting in settings if setting != "full")  # every point observed: nothing to fill
    choices = select_priors(signals, sparse, lambda setting, count: seeded_masks(setting, count, grid, seed + 7))
    return DataPriors(signals, choices)


def inpainting_table(
    results: dict[str, dict[str, dict[str, float | None]]], metric: str = "psnr", dims: int = 2
) -> str:
    """Methods as rows, context settings as columns; the best number of each column in bold. ``dims``: the
    signals' dimension, whose classical fills the rows name."""
    best = {
        s: max((v[metric] for v in by_method.values() if v[metric] is not None), default=None)
        for s, by_method in results.items()
    }
    rows = [
        {f"PSNR (dB), {METRICS[metric] if dims == 2 else METRICS[metric].replace('pixels', 'points')}": label}
        | {s: db_cell(results[s][method][metric], best[s]) for s in results}
        for method, label in method_labels(dims).items()
        if method in next(iter(results.values()))
    ]
    return markdown_table(rows)


SERIES_SCALE_METHODS = {
    "hypersiren": "HyperSiren rendered at the rate",
    "hypersiren_bicubic": "HyperSiren's own-rate completion, cubic",
    "pixel_unet_bicubic": "Ablation cell head's completion, cubic",
    "bicubic": "Cubic of the input (fewer samples: of its spline fill)",
}
SCALE_METHODS = {
    "hypersiren": "HyperSiren rendered at the scale",
    "hypersiren_bicubic": "HyperSiren's own-size completion, bicubic",
    "pixel_unet_bicubic": "Ablation pixel U-Net's completion, bicubic",
    "bicubic": "Bicubic of the input (fewer pixels: of its biharmonic fill)",
}


def evaluate_scales(
    model: HyperSiren,
    low: Tensor,
    high: dict[float, Tensor],
    settings: tuple[str, ...] | None = None,
    ablation: HyperSiren | None = None,
    seed: int = 0,
    batch_size: int = 32,
    supersample: int | None = None,
    progress: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """Arbitrary-scale rendering: mean per-image PSNR (dB, on [0, 1]) against the true larger images.

    ``low (N, C, h, w)`` uint8 is the input; ``high`` maps each scale to the same images resized
    from the same originals, ``(N, C, H, W)`` uint8 with ``H ≈ scale * h``. The model sees the
    pixels of ``setting``'s seeded mask of ``low`` and renders at ``(H, W)``; the others upsample
    a completion at ``low``'s size bicubically. ``settings`` default to all pixels and ``scale_settings``'s
    sparse one. Returns ``{setting: {scale: {method: psnr}}}``.
    """
    for name, images in {"low": low, **{f"high[{scale}]": truths for scale, truths in high.items()}}.items():
        _require_signals(images, name)
    device = next(model.parameters()).device

    fill = "biharmonic" if low.dim() == 4 else "cubic"  # the sparse input's classical completion

    def predict(
        image: Tensor, mask: Tensor, rows: slice, setting: str
    ) -> dict[tuple[float, str], tuple[Tensor, Tensor]]:
        own_size = {"hypersiren_bicubic": model.inpaint(image, mask, supersample=supersample)}
        own_size["bicubic"] = image if bool(mask.all()) else classical_fill(fill, image, mask)
        if ablation is not None:
            own_size["pixel_unet_bicubic"] = ablation.inpaint(image, mask)
        predictions = {}
        for scale, truths in high.items():
            size = tuple(truths.shape[2:])
            truth = model_space(truths[rows].to(device))
            predictions[scale, "hypersiren"] = (model.inpaint(image, mask, size=size, supersample=supersample), truth)
            for method, completion in own_size.items():
                predictions[scale, method] = (cubic_resize(completion, size), truth)
        return predictions

    settings = settings or scale_settings(low.shape[2:])
    scored = mean_psnrs(low, settings, predict, device, seed, batch_size, progress=progress, desc="any-scale rendering")
    return {
        setting: {
            f"{scale:g}": {method: scores["psnr"] for (at, method), scores in rows.items() if at == scale}
            for scale in high
        }
        for setting, rows in scored.items()
    }


def _require_signals(signals: Tensor, name: str) -> None:
    """``TypeError`` unless ``signals`` are what ``load_images`` gives: uint8 images in [0, 255], or float signals
    (series) in [-1, 1]. Float images in [0, 1] or [0, 255] would be scored as other values, a number that looks
    like a result."""
    if require_tensor(signals, name).dtype == torch.uint8:
        return
    if not signals.is_floating_point() or signals.dim() != 3 or not bool((signals.abs() <= 1).all()):
        raise TypeError(
            f"{name} must be uint8 images in [0, 255] or float series (N, C, T) in [-1, 1], as load_images gives; "
            f"got {signals.dtype} {tuple(signals.shape)}"
        )


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


def scale_settings(grid: tuple[int, ...]) -> tuple[str, str]:
    """What arbitrary-scale rendering starts from: all points, and 10% of them (100 at 32x32)."""
    return "full", protocol_settings(grid)[1]


def cubic_resize(signals: Tensor, size: tuple[int, ...]) -> Tensor:
    """``(B, C, *S)`` -> ``(B, C, *size)`` by cubic convolution (``align_corners=False``): bicubic for images, for a
    series the same along its one axis (a one-row image), trilinear for volumes (torch has no tricubic)."""
    if signals.dim() == 3:
        return F.interpolate(signals.unsqueeze(2), size=(1, *size), mode="bicubic", align_corners=False).squeeze(2)
    mode = "bicubic" if signals.dim() == 4 else "trilinear"
    return F.interpolate(signals, size=size, mode=mode, align_corners=False)


def scales_table(results: dict[str, dict[str, float]], low_size: int, setting: str, dims: int = 2) -> str:
    """One setting of ``evaluate_scales``'s results: methods as rows, scales as columns, best in bold."""
    scales = list(results)
    best = {scale: max(results[scale].values()) for scale in scales}
    power, points = ("²", "pixels") if dims == 2 else ("", "samples")
    given = f"all {points}" if setting == "full" else f"{setting} {points}"
    title = f"{low_size}{power} input ({given}), PSNR (dB) vs the truth"
    labels = SCALE_METHODS if dims == 2 else SERIES_SCALE_METHODS
    rows = [
        {title: label}
        | {
            f"×{float(scale):.3g} ({round(float(scale) * low_size)}{power})": db_cell(
                results[scale][method], best[scale]
            )
            for scale in scales
        }
        for method, label in labels.items()
        if method in results[scales[0]]
    ]
    return markdown_table(rows)


def db_cell(value: float | None, best: float | None) -> str | None:
    """A table cell: dB to two decimals, in bold when it is its column's best; None stays None ("—")."""
    return None if value is None else (f"**{value:.2f}**" if value == best else f"{value:.2f}")


def require_not_fuller(path: Path, measured: dict[str, Any], scales: list[str]) -> None:
    """``ConfigError`` if the result file ``path`` measured what an evaluation (``measured``: its ``run``,
    ``num_images``, ``data_root``, ``seed``, ``ablation``; ``scales``) would lose by replacing it: another run's
    results, more images, another data root or seed, an ablation or scales; or if ``path`` is not an evaluation at
    all (``results.earlier_result``). A run's results must not shrink or change meaning because someone evaluated a
    subset, e.g. a tracked ``pretrained/*/eval/metrics.json``."""
    saved = earlier_result(path, "results")
    if saved is None:
        return
    lost = []
    if isinstance(saved.get("run"), str) and not _same_run(saved["run"], measured.get("run")):
        lost.append(f"the run {saved['run']}, this one {measured.get('run')}")
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

"""Datasets as signal tensors, and the batches drawn from them: images here, series through ``series``.

Each split is decoded once (``decode_image``, with PIL: torchvision.io's decoders are
deprecated since 0.29) into a ``(N, 3, S, S)`` uint8 tensor, cached on disk and memory-mapped
(``decoded_split``): the next program starts in seconds, a split larger than memory is paged
from disk, and indexing it is far faster than any per-item loader, so data loading never
bounds the training step.
"""

import hashlib
import json
import math
import shutil
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch
import torchvision
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from hypersiren.across import memory
from hypersiren.across.context import training_context_mask
from hypersiren.across.series import load_series
from hypersiren.core.checks import require_count
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.pixels import to_model_space
from hypersiren.errors import DatasetError
from hypersiren.files import write_atomically

if TYPE_CHECKING:
    from hypersiren.across.config import TrainConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CELEBA_SPLITS = {"train": "0", "val": "1", "test": "2"}
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DataConfig:
    dataset: Literal["celeba", "cifar10", "folder", "ucr"] = "celeba"
    root: str = "../shared/data/celeba"  # a relative root is taken from the repository root: see dataset_root
    image_size: int = 32
    eval_split: str = (
        "val"  # the held-out split: 'val' for CelebA here (its test images are not shipped), 'test' for CIFAR-10
    )
    download: bool = False  # CIFAR-10 only: fetch torchvision's copy into root when online
    train_limit: int = 0  # train on the first N images only (0: all); for quick experiments and tests
    cache: str = "~/.cache/hypersiren"  # decoded splits, memory-mapped ("": decode into memory every time)


def load_images(config: DataConfig, split: str, limit: int | None = None) -> Tensor:
    """Decode one split into a uint8 tensor ``(N, 3, S, S)``; ``limit`` keeps the first N (in file order).

    ``dataset="ucr"`` loads series instead (``series.load_series``): float ``(N, 1, S)`` in [-1, 1], ``root`` the
    UCR dataset's name (or folder), so every program that loads a split trains and scores series as well.

    Every image is centre-cropped to its short side's square, then resized. For CelebA's aligned
    178x218 faces that square is the standard 178 crop, in a rescaled copy (89x109) it is the same
    framing, and a copy already cropped square (64x64) is used whole: nothing is ever padded, where
    a fixed 178 crop would fill most of such copies with black.
    """
    if limit is not None:
        require_count(limit, "limit", low=1)  # a slice would take -1 as all but the last image, and 3.5 not at all
    if config.dataset == "ucr":
        return load_series(config.root, split, config.image_size, limit)
    root = dataset_root(config)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"data.root {root} is a file, not a folder: pass the folder that holds the dataset")
    if config.dataset == "cifar10" and (config.download or (root / "cifar-10-batches-py").is_dir()):
        images = _load_torchvision_cifar10(root, split, config.download)[:limit]
        _check_memory(len(images), config.image_size)
    else:
        files = {"celeba": celeba_files, "cifar10": _cifar10_folder_files, "folder": _folder_files}[config.dataset](
            root, split
        )
        if config.cache:
            images = decoded_split(files[:limit], config.image_size, _from_repository(config.cache), label=split)
        else:
            _check_memory(len(files[:limit]), config.image_size)
            images = _decode(files[:limit], config.image_size, label=split)
    if images.shape[-1] != config.image_size:
        images = square_resize(images, config.image_size)
    return images


def dataset_root(config: DataConfig) -> Path:
    """``config.root`` as a folder; a relative root is taken from the repository root, not the working directory.

    Presets and saved runs name roots as seen from the repository (``../shared/data/celeba``),
    and programs must find them from any folder. Roots typed on the command line are made
    absolute from the working directory when parsed (``command_line_root``), as a shell user means them.
    """
    return _from_repository(config.root)


def _from_repository(path: str) -> Path:
    """``path`` with ``~`` expanded; relative to the repository root when relative."""
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else (REPO_ROOT / expanded).resolve()


def command_line_root(text: str) -> str:
    """A dataset folder given on the command line, made absolute from the working directory."""
    return str(Path(text).expanduser().absolute())


class ShuffledBatches:
    """Batch indices for step ``s`` as a pure function of (seed, s): a resumed run sees the same batches.

    Each epoch is a fresh permutation seeded by (seed, epoch); the last partial batch is dropped.
    Permutations are drawn on ``device`` (the images'), so indexing never copies from the host.
    """

    def __init__(self, num_images: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if batch_size > num_images:
            raise ValueError(f"batch size {batch_size} exceeds the {num_images} training images")
        self.num_images, self.batch_size, self.seed = num_images, batch_size, seed
        self.device = torch.device(device)
        self.batches_per_epoch = num_images // batch_size
        self._epoch, self._permutation = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> Tensor:
        epoch, offset = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = self.generator(self.seed * 100_003 + epoch)
            permutation = torch.randperm(self.num_images, generator=generator, device=self.device)
            self._epoch, self._permutation = epoch, permutation
        return self._permutation[offset * self.batch_size : (offset + 1) * self.batch_size]

    def generator(self, seed: int) -> torch.Generator:
        """A generator on ``device`` seeded by ``seed``: on CUDA, seeding it is host bookkeeping, not a sync."""
        return torch.Generator(device=self.device).manual_seed(seed)


class Batch(NamedTuple):
    """One training step's share of images and the points its loss is taken at."""

    image: Tensor  # (B, C, *S) in [-1, 1]: images (B, C, S, S), series (B, C, S)
    mask: Tensor  # (B, 1, *S) bool: the context the encoder sees
    coords: Tensor  # (B, N, D): the query points rendered
    target: Tensor  # (B, N, C) in [-1, 1]: their true values
    observed: Tensor  # (B, N) bool: which query points are context pixels


def training_batch(
    images: Tensor,
    batches: ShuffledBatches,
    step: int,
    min_context: int,
    max_context: int,
    log_uniform: bool = False,
    top_half_fraction: float = 0.0,
    query_points: int = 0,
    fine_images: Tensor | None = None,
    fine_points: int = 0,
    hflip: bool = False,
    shard: slice = slice(None),
) -> Batch:
    """Training step ``step``'s batch, a pure function of (seed, step): a resumed run replays it exactly.

    ``images`` is a split from ``load_images`` (uint8 images or float signals) on ``batches.device``, where
    every draw is made: the batch is assembled without a copy from the host or a wait on the device. The query
    points are every pixel, or ``query_points`` of them per image (``query_pixels``), plus ``fine_points`` points of
    ``fine_images`` (the same split at twice the size, ``fine_grid_points``); ``hflip`` mirrors half the
    images (and their fine versions) left-right. Everything is drawn
    for the whole batch, then ``shard`` (this process's share under DDP) is kept, so that the draws
    do not depend on the number of processes.
    """
    grid = images.shape[2:]
    masks = training_context_mask(
        batches.batch_size,
        grid,
        min_context,
        max_context,
        log_uniform,
        top_half_fraction,
        generator=batches.generator(batches.seed * 1_000_003 + step),
    )
    image = model_space(images[batches.indices(step)])
    if hflip:
        mirrored = _mirrored_rows(batches, step, dims=len(grid))  # the same rows of the fine images below
        image = torch.where(mirrored, image.flip(-1), image)
    coords = cell_centres(grid, images.device).expand(batches.batch_size, -1, -1)
    target, observed = rearrange(image, "b c ... -> b (...) c"), masks.flatten(1)
    if query_points:
        index = query_pixels(observed, query_points, batches.generator(batches.seed * 104_729 + step))  # (B, K)
        coords, target = (_take(t, index) for t in (coords, target))
        observed = observed.gather(1, index)
    if fine_points:
        fine = model_space(fine_images[batches.indices(step)])
        if hflip:
            fine = torch.where(mirrored, fine.flip(-1), fine)
        fine_coords, fine_target = fine_grid_points(
            fine, num_points=fine_points, generator=batches.generator(batches.seed * 7_919 + step)
        )
        coords, target = torch.cat([coords, fine_coords], dim=1), torch.cat([target, fine_target], dim=1)
        observed = torch.cat([observed, torch.zeros_like(fine_target[..., 0], dtype=torch.bool)], dim=1)
    return Batch(*(t[shard] for t in (image, masks, coords, target, observed)))


def recipe_batch(
    train: "TrainConfig",
    images: Tensor,
    batches: ShuffledBatches,
    step: int,
    fine_images: Tensor | None = None,
    shard: slice = slice(None),
) -> Batch:
    """``training_batch`` with ``train``'s recipe: its context range, top halves, query and fine points."""
    return training_batch(
        images=images,
        batches=batches,
        step=step,
        min_context=train.min_context,
        max_context=train.max_context,
        log_uniform=train.log_uniform_context,
        top_half_fraction=train.top_half_fraction,
        query_points=train.query_points,
        fine_images=fine_images,
        fine_points=train.fine_points,
        hflip=train.hflip,
        shard=shard,
    )


def _mirrored_rows(batches: ShuffledBatches, step: int, dims: int) -> Tensor:
    """``(B, 1, …)`` bool: which signals of step ``step`` are mirrored along the last axis (half of them, drawn from
    (seed, step) on the device). A mirrored face is another plausible face: on 4,560 faces seen hundreds of times
    each (the GPU presets), it doubles the faces there are to learn from."""
    generator = batches.generator(batches.seed * 31_337 + step)
    mirrored = torch.rand(batches.batch_size, generator=generator, device=batches.device) < 0.5
    return mirrored.view(-1, *[1] * (dims + 1))


def model_space(signals: Tensor) -> Tensor:
    """A split's signals in model space: uint8 images mapped to [-1, 1]; float signals are stored there already."""
    return to_model_space(signals) if signals.dtype == torch.uint8 else signals.float()


def query_pixels(observed: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """Indices ``(B, count)`` of the pixels to render: the missing ones first, in random order, then observed ones.

    ``observed (B, P)`` bool. The held-out metric is the missing pixels' error, so they are the
    points worth rendering: with 98% observed every missing pixel is kept, where a uniform subset
    would keep one in four. Within each group the choice is uniform, so each loss term is the mean
    over a uniform sample of its pixels; ``count = P`` keeps every pixel.
    """
    scores = torch.rand(observed.shape, generator=generator, device=observed.device) + observed  # missing < 1 <= obs.
    return scores.topk(count, dim=1, largest=False, sorted=False).indices


def _take(points: Tensor, index: Tensor) -> Tensor:
    """``points (B, P, D)`` at ``index (B, K)`` -> ``(B, K, D)``."""
    return points.gather(1, index.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


def celeba_files(root: Path, split: str) -> list[Path]:
    partition, folder = root / "list_eval_partition.txt", root / "img_align_celeba"
    if not partition.is_file() or not folder.is_dir():
        raise DatasetError(
            f"CelebA not found under {root}: expected {folder}/NNNNNN.jpg and {partition} "
            "(download 'Align&Cropped Images' and 'list_eval_partition.txt' from the CelebA site, "
            "or pass --data.root with the folder holding them)"
        )
    if split not in CELEBA_SPLITS:
        raise DatasetError(f"CelebA has splits {sorted(CELEBA_SPLITS)}, not {split!r}")
    files = [folder / name for name, code in _partition_lines(partition) if code == CELEBA_SPLITS[split]]
    if not files:
        raise DatasetError(f"{partition} lists no image for split {split!r}: choose another split (e.g. 'val')")
    missing = [file.name for file in files if not file.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(files)} CelebA {split} images listed in {partition.name} are missing from "
            f"{folder} (first: {missing[0]}); restore them or regenerate the partition file for the images present"
        )
    return files


def _partition_lines(partition: Path) -> list[tuple[str, str]]:
    """The ``(file name, split code)`` pairs of CelebA's ``list_eval_partition.txt``, one per non-blank line."""
    pairs = []
    for number, line in enumerate(partition.read_text(errors="replace").splitlines(), start=1):
        fields = line.split()
        if fields and (len(fields) != 2 or fields[1] not in CELEBA_SPLITS.values()):
            raise DatasetError(
                f"{partition} line {number} is {line.strip()[:60]!r}, not 'NNNNNN.jpg CODE' with CODE 0, 1 or 2: "
                "restore the file from the CelebA download"
            )
        if fields:
            pairs.append((fields[0], fields[1]))
    return pairs


def _cifar10_folder_files(root: Path, split: str) -> list[Path]:
    split = "test" if split == "val" else split  # CIFAR-10's only held-out split
    if split not in ("train", "test"):
        raise DatasetError(f"CIFAR-10 has splits 'train' and 'test', not {split!r}")
    files = _folder_files(root / split, None) if (root / split).is_dir() else []
    if not files:
        raise DatasetError(
            f"CIFAR-10 not found under {root}: expected torchvision's {root}/cifar-10-batches-py "
            f"(use download=true when online) or an image folder {root}/{split}/<class>/*.jpg"
        )
    return files


def _folder_files(root: Path, split: str | None) -> list[Path]:
    """Every image under ``root`` (recursive, sorted); split 'val' is every 10th file, 'train' the rest."""
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist: pass --data.root with a folder of images")
    files = sorted(path for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    odd = [path for path in files if not path.is_file()]
    if odd:  # caught here, in one line naming them, not as a missing file mid-decode
        raise DatasetError(
            f"{len(odd)} entries under {root} are named as images but are no readable file (a folder, a broken "
            f"link or a special file; first: {odd[0]}): remove or rename them"
        )
    if split is None:
        return files
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    if split not in ("train", "val"):
        raise DatasetError(f"an image folder has splits 'train' and 'val', not {split!r}")
    if len(files) < 10:
        raise DatasetError(
            f"{root} holds {len(files)} images: too few for a 'val' split (every 10th image) and a 'train' split "
            "(the rest); add images until there are at least 10"
        )
    return [file for index, file in enumerate(files) if (index % 10 == 9) == (split == "val")]


def _load_torchvision_cifar10(root: Path, split: str, download: bool) -> Tensor:
    split = "test" if split == "val" else split
    try:
        dataset = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as error:
        raise DatasetError(
            f"CIFAR-10 under {root} is incomplete or corrupt ({error}); delete it and download again"
        ) from error
    return torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()


def _check_memory(count: int, size: int) -> None:
    """Refuse a split whose decoded uint8 tensor would take more than half the machine's memory,
    before decoding it: otherwise the decode runs until the machine runs out."""
    needed, available = 3 * size * size * count, memory.physical_memory()
    if needed > available // 2:
        raise DatasetError(
            f"{count} images at {size}x{size} take {needed / 2**30:.1f} GiB decoded, more than half of this machine's "
            f"{available / 2**30:.1f} GiB: lower data.image_size, or load fewer images (data.train_limit, --limit)"
        )


def decoded_split(files: list[Path], size: int, cache: Path, label: str = "") -> Tensor:
    """``files`` decoded at ``size`` (``_decode``), from a memory-mapped file under ``cache``, written the first time.

    The file is named by a hash of every file's path, byte size and modification time and of
    ``size``, so adding, removing or changing an image (or another crop size) decodes again; a
    stale file is never read. Pages are read on demand and shared between programs, so a split
    larger than memory trains from disk. When the cache cannot be written (a full disk, no
    permission) the split is decoded into memory with a one-line warning: nothing is lost. ``label`` (the
    split's name) tells the progress bar's reader which split is being decoded.
    """
    listing = [(str(file.resolve()), *_size_and_time(file)) for file in files]
    key = hashlib.sha256(json.dumps([size, listing]).encode()).hexdigest()[:24]
    path = cache / f"{len(files)}x{size}px-{key}.npy"
    shape = (len(files), 3, size, size)
    try:
        return torch.from_numpy(_cached_array(path, shape))
    except (OSError, ValueError):
        pass  # absent, or damaged since it was written whole: decode it (again)
    try:
        _write_decoded(files, size, path, label)
        return torch.from_numpy(_cached_array(path, shape))
    except OSError as error:
        print(f"warning: cannot cache decoded images in {cache} ({error}); decoding into memory", file=sys.stderr)
        _check_memory(len(files), size)
        return _decode(files, size, label)


def _size_and_time(file: Path) -> tuple[int, int]:
    status = file.stat()
    return status.st_size, status.st_mtime_ns


def _cached_array(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The cached split at ``path``, memory-mapped copy-on-write (writable for torch, never written back)."""
    array = np.load(path, mmap_mode="c")
    if array.shape != shape or array.dtype != np.uint8:
        raise ValueError(f"{path} holds {array.dtype} {array.shape}, not uint8 {shape}")
    return array


def _write_decoded(files: list[Path], size: int, path: Path, label: str) -> None:
    """Decode ``files`` chunk by chunk into a .npy at ``path`` (bounded memory), written atomically (``files``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    needed, free = len(files) * 3 * size * size, shutil.disk_usage(path.parent).free
    if needed > free:
        raise OSError(28, f"needs {needed / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free", str(path.parent))

    def write(file: IO[bytes]) -> None:
        header = {"descr": "|u1", "fortran_order": False, "shape": (len(files), 3, size, size)}
        np.lib.format.write_array_header_2_0(file, header)
        for _, chunk in _decoded_chunks(files, size, label):
            file.write(chunk.numpy().tobytes())

    write_atomically(path, write)


def _decode(files: list[Path], size: int, label: str = "") -> Tensor:
    """Decode ``files`` into memory, one chunk of decoded images held at a time besides the result."""
    images = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    for start, chunk in _decoded_chunks(files, size, label):
        images[start : start + len(chunk)] = chunk
    return images


def _decoded_chunks(files: list[Path], size: int, label: str, chunk: int = 2048) -> Iterator[tuple[int, Tensor]]:
    """``(start, uint8 (n, 3, size, size))`` chunks of ``files``: decoded, centre-cropped to a square and resized
    with antialiasing."""
    desc = f"decoding {len(files)} {label} images at {size}x{size}".replace("  ", " ")  # no label: no double space
    for start in tqdm(range(0, len(files), chunk), desc=desc, unit="chunk", leave=False):
        yield start, torch.stack([square_resize(decode_image(file), size) for file in files[start : start + chunk]])


def decode_image(path: str | Path) -> Tensor:
    """An image file as a viewer shows it: uint8 ``(3, H, W)`` RGB, for every format PIL reads.

    Every image hypersiren reads (dataset splits, a user's photo or mask) comes through here, so
    each kind of file decodes one way: the EXIF orientation is applied (cameras store portraits
    sideways and let viewers rotate them); 16-bit pixels are scaled to 8 bits by their depth
    (PIL's own conversion clips at 255, which turns most of a 16-bit image white); grayscale and
    palette images are expanded to RGB; transparent pixels are composited on white, as a page
    shows them (dropping alpha would show whatever colour they happen to hold); CMYK is
    converted. A missing, corrupt or truncated file, one above PIL's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``; PIL itself only warns up to twice it) and pixels of no
    fixed range (float, 32-bit integer) raise DatasetError naming the file and the fix.
    """
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not an image file: name the image files in it")
    if not path.is_file():
        raise DatasetError(f"no image file at {path}: check the path")
    # Opened here, outside the handlers below, so that a file-system error (permissions) keeps its own message.
    with path.open("rb") as file, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(file) as image:
                return TF.pil_to_tensor(_viewed_rgb(ImageOps.exif_transpose(image), path))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise DatasetError(
                f"{path} is too large to decode safely ({error}): downscale it (it is cropped and resized anyway)"
            ) from error
        except UnidentifiedImageError as error:
            raise DatasetError(
                f"{path} is corrupt or not an image PIL can read: replace it (e.g. with a PNG) or remove it"
            ) from error
        except (OSError, SyntaxError, ValueError, EOFError) as error:  # PIL raises each for some broken file
            raise DatasetError(
                f"cannot decode {path} ({error}): the file is corrupt or truncated; replace or remove it"
            ) from error


_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _viewed_rgb(image: Image.Image, path: Path) -> Image.Image:
    """``image`` in 8-bit RGB as a viewer shows it (see ``decode_image``)."""
    if image.mode.startswith("I"):  # 16-bit gray ("I;16", "I;16B"; "I" is how PIL opens 16-bit PGM)
        pixels = np.asarray(image)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise DatasetError(
                f"{path} holds 32-bit integer pixels (up to {pixels.max()}), whose range no viewer agrees on: "
                "save it as an 8- or 16-bit image"
            )
        image = Image.fromarray(np.rint(pixels * (255 / 65535)).astype(np.uint8))
    if image.mode == "F":
        raise DatasetError(
            f"{path} holds floating-point pixels, of a range the file does not record: save it as an 8- or 16-bit image"
        )
    try:
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
        return image.convert("RGB")
    except ValueError as error:  # a mode PIL reads but cannot convert
        raise DatasetError(f"{path} has pixel mode {image.mode} ({error}): save it as an RGB PNG or JPEG") from error


def square_resize(images: Tensor, size: int, nearest: bool = False) -> Tensor:
    """uint8 ``(..., H, W)`` centre-cropped to its short side's square, then resized to ``(..., size, size)``.

    Antialiased (an area average of the pixels) for images; ``nearest`` for masks, whose
    pixels must keep their values.
    """
    short_side = min(images.shape[-2:])
    if images.shape[-2] != images.shape[-1]:
        images = TF.center_crop(images, [short_side, short_side])
    if short_side == size:
        return images
    if nearest:
        return TF.resize(images, [size, size], interpolation=TF.InterpolationMode.NEAREST_EXACT, antialias=False)
    return TF.resize(images, [size, size], antialias=True)


def fine_grid_points(
    fine_images: Tensor, num_points: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random pixel centres of a finer grid: supervision *between* the input's pixel centres.

    ``fine_images (B, C, *kS)`` in [-1, 1] are the input signals at k times their
    resolution (resized from the same originals). Trained only on the input grid, a
    renderer is free to do anything between cell centres; these points teach it what
    a sharper signal looks like there. Returns ``coords (B, M, D)`` and ``target (B, M, C)``.
    """
    batch, channels, *fine_grid = fine_images.shape
    index = torch.randint(0, math.prod(fine_grid), (batch, num_points), generator=generator, device=fine_images.device)
    coords = cell_centres(fine_grid, fine_images.device)[index]  # (B, M, D)
    pixels = rearrange(fine_images, "b c ... -> b (...) c")
    return coords, pixels.gather(1, index.unsqueeze(-1).expand(-1, -1, channels))

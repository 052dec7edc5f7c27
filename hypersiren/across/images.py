"""The images adapter: image files (CelebA, CIFAR-10, any folder) as uint8 splits ``(N, 3, S, S)``.

Each split is decoded once (``decode_image``, with PIL: torchvision.io's decoders are
deprecated since 0.29) into a ``(N, 3, S, S)`` uint8 tensor, cached on disk and memory-mapped
(``decoded_split``): the next program starts in seconds, a split larger than memory is paged
from disk, and indexing it is far faster than any per-item loader, so data loading never
bounds the training step.
"""

import errno
import hashlib
import json
import shutil
import sys
import urllib.error
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from hypersiren.across import memory
from hypersiren.errors import DatasetError
from hypersiren.files import byte_size, write_atomically

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


CELEBA_SPLITS = {"train": "0", "val": "1", "test": "2"}


def load_image_split(
    dataset: str,
    root: Path,
    split: str,
    size: int,
    limit: int | None = None,
    cache: Path | None = None,
    download: bool = False,
) -> Tensor:
    """One split of the image dataset ``dataset`` ("celeba", "cifar10", "folder") under ``root`` as uint8
    ``(N, 3, size, size)``; ``limit`` keeps the first N (in file order); ``cache``: the folder of decoded
    splits (None: decode into memory).

    Every image is centre-cropped to its short side's square, then resized. For CelebA's aligned
    178x218 faces that square is the standard 178 crop, in a rescaled copy (89x109) it is the same
    framing, and a copy already cropped square (64x64) is used whole: nothing is ever padded, where
    a fixed 178 crop would fill most of such copies with black.
    """
    if root.exists() and not root.is_dir():
        raise DatasetError(f"data.root {root} is a file, not a folder: pass the folder that holds the dataset")
    if dataset == "cifar10" and (download or (root / "cifar-10-batches-py").is_dir()):
        images = _load_torchvision_cifar10(root, split, download)[:limit]
        _check_memory(len(images), size)
    else:
        files = {"celeba": celeba_files, "cifar10": _cifar10_folder_files, "folder": _folder_files}[dataset](
            root, split
        )
        if cache is not None:
            images = decoded_split(files[:limit], size, cache, label=split)
        else:
            _check_memory(len(files[:limit]), size)
            images = _decode(files[:limit], size, label=split)
    if images.shape[-1] != size:
        images = square_resize(images, size)
    return images


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
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:  # offline, or the server is away
        reason = getattr(error, "reason", None) or error
        raise DatasetError(
            f"downloading CIFAR-10 into {root} failed ({reason}): this machine may be offline; pass a local copy "
            "with --data.root (a folder holding cifar-10-batches-py), or download it where there is a network"
        ) from None
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
        raise OSError(errno.ENOSPC, f"needs {byte_size(needed)}, {byte_size(free)} free", str(path.parent))

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
    converted. The file's own faults (``opened_image``) and pixels of no fixed range (float,
    32-bit integer) raise DatasetError naming the file and the fix.
    """
    with opened_image(path) as image:
        return TF.pil_to_tensor(_viewed_rgb(image, Path(path)))


@contextmanager
def opened_image(path: str | Path) -> Iterator[Image.Image]:
    """The image file ``path`` opened with PIL, its EXIF orientation applied, for reading its pixels inside the
    ``with``: the one way hypersiren opens an image, so that every reader has the same limits. A missing, corrupt
    or truncated file, and one above PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``; PIL itself
    only warns up to twice it), raise DatasetError naming the file and the fix, from the ``with`` block too.
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
                yield ImageOps.exif_transpose(image)
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

"""A local web page to try a trained run on: drop a photo, paint the pixels you keep or pick a density, pick an
output size, and see HyperSiren's completion beside the classical biharmonic fill.

    python eval/demo.py                                    # pretrained/celeba64; open http://127.0.0.1:7860
    python eval/demo.py --run runs/celeba32 --port 8000

Needs the demo extra (pip install -e ".[demo]": Gradio). The page is eval/inpaint.py --image with a brush:
the photo is centre-cropped to a square and resized to the output size, and observed there. Pixels
you paint are the observed ones: a pixel counts as observed when at least half of it is painted. Paint
nothing, and that density of random pixels is observed instead (a new draw each time, from --seed). Every
completion keeps your own pixels where observed (see eval/inpaint.py). The page is served on 127.0.0.1
only, and sends nothing anywhere. A photo is read as --image reads a file, limits included, from the browser
or through Gradio's API; what cannot be read is said on the page in one line, as on the command line.
Uploads and completions are kept in a folder only you can read, deleted when the server stops (Ctrl-C or
kill); with GRADIO_TEMP_DIR set, the folder is made in it.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse
import importlib.util

from hypersiren.cli import (
    BEST_FACE_MODEL,
    add_run_options,
    describe,
    exits_cleanly,
    int_in,
    parse_before_imports,
    program,
)


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    add_run_options(parser, default_run=BEST_FACE_MODEL)
    parser.add_argument("--port", type=int_in(1024, 65535), default=7860, help="port of the page on 127.0.0.1")
    args = parser.parse_args()
    if importlib.util.find_spec("gradio") is None:  # found without importing it: that waits for GRADIO_TEMP_DIR
        parser.error('the demo page needs Gradio: install the demo extra, pip install -e ".[demo]"')
    return args


parse_before_imports(parse_args, __name__)

import errno
import itertools
import os
import shutil
import signal
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from hypersiren.across.checkpoint import load_run, require_image_run
from hypersiren.across.config import DataConfig
from hypersiren.across.context import random_context_mask
from hypersiren.across.data import dataset_root
from hypersiren.across.images import celeba_files, decode_image, opened_image
from hypersiren.across.model import HyperSiren
from hypersiren.across.rules import MAX_PHOTO_SIDE
from hypersiren.across.user_images import DetailWeights, complete_photo, scores_line
from hypersiren.core.pixels import to_unit_range
from hypersiren.errors import ConfigError, DatasetError
from hypersiren.figures import context_image

HOST = "127.0.0.1"  # this machine only: the page runs the user's own photos through a model
# The brush marks pixels to keep: green, never the magenta that every output (figures.MISSING_COLOUR) uses for missing.
BRUSH_COLOUR = "#00ff00"
HELD_OUT_FACES = 16  # the held-out faces the page's button cycles through


@exits_cleanly()
def main() -> None:
    args = parse_args()
    require_free_port(args.port)  # before the model loads: Gradio would say so after "serving on", in its own terms
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill stops the page as Ctrl-C does, folder deleted
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported: a local page stays local
    with private_uploads():  # before Gradio is imported too, which reads GRADIO_TEMP_DIR then
        import gradio  # installed: parse_args says so otherwise

        config, model = load_run(args.run, device=args.device, data_root=args.data_root)
        require_image_run(config, args.run, program="eval/demo.py")
        faces = held_out_faces(config.data)
        detail = DetailWeights.of_run(args.run)
        page = build_page(gradio, model, size=config.data.image_size, seed=args.seed, faces=faces, detail=detail)
        theme = gradio.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])  # no web fonts
        page.launch(server_name=HOST, server_port=args.port, theme=theme, quiet=True, prevent_thread_lock=True)
        print(f"serving {args.run} on http://{HOST}:{args.port} (Ctrl-C stops it)", flush=True)
        page.block_thread()  # until Ctrl-C or kill, which Gradio takes as its signal to close


def require_free_port(port: int) -> None:
    """``ConfigError`` if another program serves on ``port`` of 127.0.0.1."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a port just closed is free
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(
                f"--port {port} is taken on {HOST} (another program, or another demo, serves there): "
                "give another --port"
            ) from None


@contextmanager
def private_uploads() -> Iterator[Path]:
    """A new folder that only this user can open (mkdtemp's mode 0700), made Gradio's GRADIO_TEMP_DIR, where it keeps
    the uploads and every image the page derives from them; deleted when the ``with`` ends. Photos are the user's own,
    and Gradio's default, the system's temp folder, is shared, and keeps them after the server stops.
    """
    folder = Path(tempfile.mkdtemp(prefix="hypersiren-demo-", dir=os.environ.get("GRADIO_TEMP_DIR")))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def held_out_faces(data: DataConfig) -> list[Path]:
    """Up to ``HELD_OUT_FACES`` of the run's held-out images (CelebA's evaluation split) for the page's button; none
    for other datasets, or where the dataset is not at hand."""
    if data.dataset != "celeba":
        return []
    try:
        return celeba_files(dataset_root(data), data.eval_split)[:HELD_OUT_FACES]
    except DatasetError:
        return []


def build_page(
    gradio: ModuleType,
    model: HyperSiren,
    size: int,
    seed: int,
    faces: list[Path],
    detail: DetailWeights | None = None,
) -> Any:
    """The page (a ``gradio.Blocks``) for ``model``, whose input is ``size x size``: a photo to paint on (or one of
    the held-out ``faces``, one click each), a density and an output size in; observed | HyperSiren | biharmonic
    out. ``gradio`` is the module, imported by ``main`` once it is known to be installed; ``detail``: the run's
    ``DetailWeights``."""
    generator = torch.Generator().manual_seed(seed)
    next_face = itertools.cycle(faces)

    def held_out_face() -> np.ndarray:  # decoded here: the page serves no file from outside its own folder
        return decode_image(next(next_face)).permute(1, 2, 0).numpy()

    def complete(editor: dict | None, percent: float, side: float) -> tuple[np.ndarray | str, ...]:
        side = int(side)  # the slider's number
        if editor is None or editor.get("background") is None:
            raise gradio.Error("Drop a photo on the left first.")
        try:
            photo = decode_image(editor["background"])  # as eval/inpaint.py --image reads a file, limits included
            layers = [brush_layer(path) for path in editor.get("layers") or []]
            mask = painted_mask(layers, photo_shape=photo.shape[-2:], size=side)
        except (DatasetError, OSError) as error:  # the command line's one line, on the page
            raise gradio.Error(describe(error)) from None
        how = "painted"
        if mask is None:
            count = max(1, round(percent / 100 * side * side))
            mask, how = random_context_mask(1, (side, side), count, generator=generator), f"{percent:g}% random"
        device = next(model.parameters()).device
        completion = complete_photo(model, photo, mask.to(device), model_side=size, detail=detail)
        observed = context_image(to_unit_range(completion.original), completion.observed)
        tiles = [observed, to_unit_range(completion.hypersiren), to_unit_range(completion.biharmonic)]
        tiles += [] if completion.gaussian is None else [to_unit_range(completion.gaussian)]
        summary = (
            f"{int(mask.sum())} of {side * side} pixels observed ({how}) at {side}x{side}, all of them read by the "
            f"model at its {size}x{size}; completions at {side}x{side}, your pixels kept; missing pixels magenta"
            + ("" if completion.gaussian is not None else "; no Gaussian-prior column: this run has no prior")
        )
        if min(photo.shape[-2:]) >= side:  # the photo holds the truth at this size: every pixel scored
            summary += f". {scores_line(completion)}"
        return (*[as_picture(tile) for tile in tiles], summary)

    with gradio.Blocks(title="hypersiren") as page:
        gradio.Markdown(
            "## HyperSiren: complete a photo from some of its pixels\n"
            "Drop a photo, then paint the pixels to keep in green (or paint nothing and pick a density). "
            f"The photo's centre square is resized to the output size and observed there; the model reads every "
            f"observed pixel (at its {size}x{size}) and renders at the output size."
        )
        with gradio.Row():
            editor = gradio.ImageEditor(
                label="your photo: paint the pixels to keep (green)",
                type="filepath",
                image_mode="RGBA",
                transforms=(),
                layers=False,
                brush=gradio.Brush(colors=[BRUSH_COLOUR], color_mode="fixed"),
                elem_id="photo",
            )
            editor.convert_and_format_image = partial(upload_path, folder=editor.GRADIO_CACHE)
            with gradio.Column():
                percent = gradio.Slider(1, 100, value=10, step=1, label="density when nothing is painted (%)")
                side = gradio.Slider(16, MAX_PHOTO_SIDE, value=256, step=16, label="output size (px)", elem_id="side")
                button = gradio.Button("Complete", variant="primary", elem_id="complete")
                if faces:
                    face = gradio.Button("Try a held-out face (one the model never saw)", elem_id="face")
                    face.click(held_out_face, outputs=[editor])
        summary = gradio.Markdown(elem_id="summary")
        with gradio.Row():
            outputs = [
                gradio.Image(label=label, type="numpy", format="png", elem_id=elem_id)
                for label, elem_id in [
                    ("observed (missing: magenta)", "observed"),
                    ("HyperSiren", "hypersiren"),
                    ("biharmonic at the output size", "biharmonic"),
                    *(
                        [("Gaussian prior of the run (bicubic, corrected)", "gaussian")]
                        if model.prior is not None
                        else []
                    ),
                ]
            ]
        button.click(complete, inputs=[editor, percent, side], outputs=[*outputs, summary])
    return page


def upload_path(file: Any, folder: str, **gradio_options: bool) -> str | None:
    """One of the editor's images (Gradio's ``FileData``, or bytes from the browser's canvas) as a file path, undecoded:
    in place of the editor's own step (``ImageEditor.convert_and_format_image``), whose PIL decoding ignores EXIF
    orientation, clips 16-bit pixels to white and silences PIL's decompression-bomb warning. Bytes are saved under
    ``folder`` (the page's private one) first. ``gradio_options``: the step's own (flatten_on_white), which
    ``decode_image`` does itself."""
    if file is None:
        return None
    if isinstance(file, bytes | bytearray | memoryview):
        path = Path(folder) / "canvas" / f"{uuid.uuid4().hex}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file)
        return str(path)
    return file.path


def brush_layer(path: str | Path) -> np.ndarray:
    """A brush layer file as uint8 ``(H, W, 4)`` RGBA, opened as every image is (``images.opened_image``, limits
    included)."""
    with opened_image(path) as layer:
        return np.asarray(layer.convert("RGBA"))


def painted_mask(layers: list[np.ndarray], photo_shape: tuple[int, int], size: int) -> Tensor | None:
    """The observed pixels ``(1, 1, size, size)`` (the output size) that the brush ``layers`` (``(H, W, 4)`` RGBA)
    paint over the photo, cropped and resized like it; a pixel is observed when at least half of its area is painted.
    None when nothing is painted."""
    painted = np.zeros(tuple(photo_shape), dtype=bool)
    for layer in layers:
        if layer.shape[:2] != painted.shape:
            raise DatasetError(
                f"a brush layer of {layer.shape[1]}x{layer.shape[0]} px does not cover the "
                f"{painted.shape[1]}x{painted.shape[0]} px photo: paint on the photo itself"
            )
        painted |= layer[..., 3] > 0
    if not painted.any():
        return None
    side = min(painted.shape)
    square = TF.center_crop(torch.from_numpy(painted)[None, None].float(), [side, side])  # as data.square_resize
    return F.interpolate(square, size=(size, size), mode="area") >= 0.5  # the painted share of each pixel


def as_picture(tile: Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` in [0, 1] as the page's uint8 ``(H, W, 3)``."""
    return (tile[0].permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()


if __name__ == "__main__":
    main()

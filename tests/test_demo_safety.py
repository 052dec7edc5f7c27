"""Issue 34, the demo page: an upload is read as eval/inpaint.py --image reads a file, through Gradio's API as from
the browser, limits and one-line reasons included; a taken port is said first; uploads stay private and go with the
server. The page is driven as Gradio's server drives it (``Blocks.process_api``), with the JSON an API client sends."""

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port
from PIL import Image

from hypersiren.across.images import decode_image
from hypersiren.across.model import HyperSiren

REPO = Path(__file__).resolve().parents[1]
SIZE = 8  # the tiny model's input side


@pytest.fixture(scope="module")
def demo(load_program):
    return load_program("eval/demo.py")


@pytest.fixture
def gradio(tmp_path, monkeypatch):
    """Gradio, keeping what the page writes under tmp_path."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return pytest.importorskip("gradio", reason="the demo page needs Gradio: pip install -e '.[demo]'")


@pytest.fixture
def page(demo, gradio, tiny_model_config):
    return demo.build_page(gradio, HyperSiren(tiny_model_config()).eval(), size=SIZE, seed=0, faces=[])


def api_call(page, photo: Path, layers: tuple[Path, ...] = (), side: int = 16) -> dict:
    """What Gradio's API does with a client's request to complete ``photo``: the editor's files as the JSON names
    them, preprocessed, handled, postprocessed."""
    from gradio.state_holder import SessionState

    def file(path: Path) -> dict:
        return {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    editor = {"background": file(photo), "layers": [file(layer) for layer in layers], "composite": file(photo)}
    return asyncio.run(page.process_api(block_fn=0, inputs=[editor, 10, side], state=SessionState(page)))


def deep_png(path: Path) -> Path:
    """A 16-bit grayscale gradient, 40x30: PIL's own 8-bit conversion clips nearly all of it to white."""
    Image.fromarray(np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 54).save(path)
    return path


def rotated_jpeg(path: Path) -> Path:
    """A 40x30 JPEG stored sideways with EXIF orientation 6, which viewers (and decode_image) show as 30x40."""
    pixels = np.zeros((30, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255  # left half white: the rotation shows
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


@pytest.mark.parametrize("make", [deep_png, rotated_jpeg], ids=["16-bit PNG", "EXIF-rotated JPEG"])
def test_an_upload_through_the_api_is_decoded_as_inpaint_image_decodes_it(demo, page, tmp_path, monkeypatch, make):
    photo = make(tmp_path / ("photo.png" if make is deep_png else "photo.jpg"))
    given, complete_photo = [], demo.complete_photo

    def noting_the_photo(model: HyperSiren, photo: torch.Tensor, *args, **options):
        given.append(photo)
        return complete_photo(model, photo, *args, **options)

    monkeypatch.setattr(demo, "complete_photo", noting_the_photo)
    result = api_call(page, photo)
    assert "pixels observed (10% random)" in result["data"][-1]
    (read,) = given
    assert torch.equal(read, decode_image(photo))  # eval/inpaint.py --image's decoding, pixel for pixel


def test_a_bad_upload_is_refused_on_the_page_in_the_command_lines_one_line(page, gradio, tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    bomb = tmp_path / "bomb.png"
    Image.new("L", (60, 60)).save(bomb)
    # 3600 pixels lie between this limit and twice it, where PIL only warns: as 144 megapixels do at PIL's own.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 40)).save(photo)
    layer = tmp_path / "layer.png"
    Image.new("RGBA", (20, 40)).save(layer)  # a brush layer of another size than the photo
    for upload, layers, phrase in [
        (corrupt, (), "corrupt.png is corrupt or not an image PIL can read: replace it"),
        (bomb, (), "bomb.png is too large to decode safely"),
        (photo, (layer,), "a brush layer of 20x40 px does not cover the 40x40 px photo: paint on the photo itself"),
    ]:
        with pytest.raises(gradio.Error) as refused:
            api_call(page, upload, layers)
        assert phrase in refused.value.message and "\n" not in refused.value.message, refused.value.message


def test_uploads_and_derived_images_stay_in_a_private_folder_that_goes_with_the_server(
    demo, gradio, tiny_model_config, tmp_path, monkeypatch
):
    parent = Path(os.environ["GRADIO_TEMP_DIR"])
    parent.mkdir()
    photo = rotated_jpeg(tmp_path / "photo.jpg")
    with demo.private_uploads() as folder:
        assert folder.parent == parent and stat.S_IMODE(folder.stat().st_mode) == 0o700
        page = demo.build_page(gradio, HyperSiren(tiny_model_config()).eval(), size=SIZE, seed=0, faces=[])
        result = api_call(page, photo)
        shown = [Path(output["path"]) for output in result["data"][:-1]]
        assert shown and all(path.is_relative_to(folder) and path.is_file() for path in shown)
        assert any(path.name == "photo.jpg" for path in folder.rglob("*"))  # the upload's copy
        assert list(parent.iterdir()) == [folder]
    assert list(parent.iterdir()) == []
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(parent))
    with pytest.raises(RuntimeError), demo.private_uploads() as folder:
        raise RuntimeError("the server failed")
    assert not folder.exists()


def test_a_taken_port_is_said_in_one_line_before_anything_serves(demo, capsys, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = str(REPO / "pretrained" / "celeba32")
        monkeypatch.setattr(sys, "argv", ["eval/demo.py", "--run", run, "--port", str(port), "--device", "cpu"])
        with pytest.raises(SystemExit) as stopped:
            demo.main()
    printed, err = capsys.readouterr()
    assert stopped.value.code == 2 and "serving" not in printed, printed
    assert err.strip().splitlines() == [
        f"error: --port {port} is taken on 127.0.0.1 (another program, or another "
        "demo, serves there): give another --port"
    ]


def test_a_stopped_server_leaves_no_upload_behind(tmp_path):
    pytest.importorskip("gradio", reason="the demo needs Gradio (pip install -e '.[demo]')")
    port = free_port()
    command = [sys.executable, str(REPO / "eval" / "demo.py"), "--run", str(REPO / "pretrained" / "celeba32")]
    temporary, working = tmp_path / "temporary", tmp_path / "working"
    temporary.mkdir()
    working.mkdir()
    environment = os.environ | {"OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(temporary)}
    server = subprocess.Popen(
        [*command, "--port", str(port), "--device", "cpu"],
        env=environment,
        cwd=working,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.communicate()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo did not serve within 3 minutes"
                time.sleep(0.5)
        assert f"on http://127.0.0.1:{port}" in server.stdout.readline()  # launched, as the page answers
        (folder,) = temporary.iterdir()
        assert folder.name.startswith("hypersiren-demo-") and stat.S_IMODE(folder.stat().st_mode) == 0o700
        server.send_signal(signal.SIGTERM)  # kill's signal, as a service manager stops it
        server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert list(temporary.iterdir()) == []

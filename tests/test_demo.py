"""eval/demo.py: the brush's mask and the photo as the page gives them, and the page itself driven in a real headless
browser (Chromium), as a user drives it: drop a photo, complete it at a density, then paint the pixels to keep."""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from conftest import free_port
from PIL import Image

from hypersiren.across.config import DataConfig
from hypersiren.across.images import decode_image
from hypersiren.across.model import HyperSiren
from hypersiren.figures import MISSING_COLOUR

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# What Chromium needs here: no sandbox as root, and no background connections to a network it cannot reach.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


@pytest.fixture(scope="module")
def demo(load_program):
    return load_program("eval/demo.py")


def test_a_model_pixel_is_observed_when_half_of_it_is_painted(demo):
    layer = np.zeros((40, 40, 4), dtype=np.uint8)  # the photo's own size: 10x10 photo pixels per model pixel at 4x4
    layer[0:10, 0:10, 3] = 255  # all of model pixel (0, 0)
    layer[0:5, 10:20, 3] = 255  # half of (0, 1)
    layer[10:13, 0:10, 3] = 255  # under half of (1, 0)
    mask = demo.painted_mask([layer], photo_shape=(40, 40), size=4)
    assert mask.shape == (1, 1, 4, 4) and mask.dtype == torch.bool
    assert mask[0, 0].nonzero().tolist() == [[0, 0], [0, 1]]
    assert demo.painted_mask([np.zeros_like(layer)], photo_shape=(40, 40), size=4) is None  # nothing painted


def test_the_browsers_canvas_is_read_as_a_file_and_transparency_is_white(demo, tmp_path):
    background = np.zeros((2, 3, 4), dtype=np.uint8)
    background[..., 0], background[0, 0, 3] = 200, 255  # one opaque red pixel, the rest transparent
    canvas = io.BytesIO()
    Image.fromarray(background).save(canvas, format="PNG")
    path = demo.upload_path(canvas.getvalue(), folder=str(tmp_path), flatten_on_white=True)  # as the editor calls it
    assert Path(path).is_relative_to(tmp_path)  # the page's private folder
    photo = decode_image(path)
    assert photo.shape == (3, 2, 3) and photo.dtype == torch.uint8
    assert photo[:, 0, 0].tolist() == [200, 0, 0] and photo[:, 1, 1].tolist() == [255, 255, 255]


def test_the_brush_that_marks_kept_pixels_is_not_the_colour_that_marks_missing_ones(demo, tiny_model_config):
    gradio = pytest.importorskip("gradio", reason="the demo page needs Gradio: pip install -e '.[demo]'")
    page = demo.build_page(gradio, HyperSiren(tiny_model_config()), size=8, seed=0, faces=[])
    (editor,) = [block for block in page.blocks.values() if isinstance(block, gradio.ImageEditor)]
    assert editor.brush.colors == [demo.BRUSH_COLOUR]  # the page's brush is the constant read below
    brush = [int(demo.BRUSH_COLOUR[start : start + 2], 16) / 255 for start in (1, 3, 5)]
    # every output draws missing pixels in MISSING_COLOUR: "keep" must not look like it
    assert sum(abs(kept - missing) for kept, missing in zip(brush, MISSING_COLOUR, strict=True)) > 1


def test_held_out_faces_are_the_runs_evaluation_split_one_click_each(demo, celeba_root, tiny_model_config, tmp_path):
    gradio = pytest.importorskip("gradio", reason="the demo page needs Gradio: pip install -e '.[demo]'")
    faces = demo.held_out_faces(DataConfig(dataset="celeba", root=str(celeba_root), eval_split="val"))
    partition = (celeba_root / "list_eval_partition.txt").read_text().split()
    val = {name for name, code in zip(partition[::2], partition[1::2]) if code == "1"}
    assert len(faces) == demo.HELD_OUT_FACES and all(face.name in val for face in faces)
    assert demo.held_out_faces(DataConfig(dataset="celeba", root=str(tmp_path))) == []  # no dataset here: no button
    assert demo.held_out_faces(DataConfig(dataset="cifar10", root=str(celeba_root))) == []
    page = demo.build_page(gradio, HyperSiren(tiny_model_config()), size=8, seed=0, faces=faces[:2])
    (click,) = [f.fn for f in page.fns.values() if getattr(f.fn, "__name__", "") == "held_out_face"]
    shown = [click() for _ in range(3)]  # the faces in turn, then the first again
    assert np.array_equal(shown[0], decode_image(faces[0]).permute(1, 2, 0).numpy())
    assert not np.array_equal(shown[0], shown[1]) and np.array_equal(shown[0], shown[2])


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "no headless browser: install Chromium and its driver (Debian: apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the browser test needs selenium (pip install -e '.[test]')"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(tmp_path):
    """The demo serving pretrained/celeba32 on a free port; its address."""
    pytest.importorskip("gradio", reason="the demo needs Gradio (pip install -e '.[demo]')")
    port = free_port()
    command = [sys.executable, str(REPO / "eval" / "demo.py"), "--run", str(REPO / "pretrained" / "celeba32")]
    environment = os.environ | {"OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(tmp_path)}
    server = subprocess.Popen([*command, "--port", str(port), "--device", "cpu"], env=environment, cwd=tmp_path)
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, "the demo exited before serving"
        try:
            urllib.request.urlopen(address, timeout=5)
            break
        except OSError:
            assert time.monotonic() < deadline, "the demo did not serve within 2 minutes"
            time.sleep(0.5)
    yield address
    server.terminate()
    server.wait(timeout=30)


def test_the_page_completes_a_dropped_photo_at_a_density_and_from_painted_pixels(browser, page, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "astronaut.png")
    browser.get(page)
    wait = WebDriverWait(browser, 120)
    upload = wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]"))
    upload.send_keys(str(tmp_path / "astronaut.png"))
    side = browser.find_element(By.CSS_SELECTOR, "#side input[type=number]")
    side.send_keys(Keys.CONTROL, "a")
    side.send_keys("64", Keys.TAB)
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#photo canvas"))

    browser.find_element(By.CSS_SELECTOR, "#complete").click()  # nothing painted: 10% of the pixels, at random
    summary = wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, "#summary").text or None)
    assert "410 of 4096 pixels observed (10% random) at 64x64" in summary and "completions at 64x64" in summary
    assert "PSNR against your photo: HyperSiren" in summary  # a photo of at least 64x64: scored at the output size
    for column in ("observed", "hypersiren", "biharmonic"):
        source = browser.find_element(By.CSS_SELECTOR, f"#{column} img").get_attribute("src")
        with urllib.request.urlopen(source, timeout=30) as response, Image.open(io.BytesIO(response.read())) as shown:
            assert shown.size == (64, 64), column

    browser.find_element(By.CSS_SELECTOR, "#photo button[aria-label=Brush]").click()
    canvas = browser.find_elements(By.CSS_SELECTOR, "#photo canvas")[-1]
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, -60, -40).click_and_hold()
    for _ in range(12):  # a zigzag, a brush's width apart
        stroke = stroke.move_by_offset(10, 0).move_by_offset(0, 7).move_by_offset(-10, 0)
    stroke.release().perform()
    browser.find_element(By.CSS_SELECTOR, "#complete").click()
    painted = wait.until(lambda driver: "(painted)" in driver.find_element(By.CSS_SELECTOR, "#summary").text)
    assert painted

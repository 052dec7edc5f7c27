"""eval/inpaint.py as a user runs it: their own photos (any format, any size) completed, and the held-out figures."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from hypersiren.across.baseline_fill import classical_fill
from hypersiren.across.checkpoint import save_checkpoint
from hypersiren.across.config import RunConfig
from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.model import HyperSiren
from hypersiren.across.user_images import DetailWeights
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.figures import written_here

REPO = Path(__file__).resolve().parents[1]
MODEL_SIZE = 32  # RunConfig's data.image_size


@pytest.fixture(scope="module")
def run_dir(tiny_model_config, tmp_path_factory) -> Path:
    """An untrained tiny run: completing a user's images reads no dataset."""
    run_dir = tmp_path_factory.mktemp("run")
    config = RunConfig(model=tiny_model_config())
    torch.manual_seed(0)
    state = {"model": HyperSiren(config.model).state_dict(), "step": 0, "config": config.to_dict()}
    save_checkpoint(state, run_dir / "checkpoint.pt")
    return run_dir


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """scikit-image's bundled photos as a user might have them: a JPEG, a 16-bit PNG and a palette PNG."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {name: folder / name for name in ("astronaut.jpg", "camera.png", "chelsea.png")}
    Image.fromarray(skimage.data.astronaut()).save(paths["astronaut.jpg"], quality=90)  # 512x512 RGB
    Image.fromarray(skimage.data.camera().astype(np.uint16) * 257).save(paths["camera.png"])  # 512x512, 16-bit gray
    Image.fromarray(skimage.data.chelsea()).quantize(colors=64).save(paths["chelsea.png"])  # 451x300, palette
    return paths


def inpaint(run_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "eval" / "inpaint.py"), "--run", str(run_dir), "--device", "cpu", *args]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=environment, check=False)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


@pytest.mark.slow
def test_a_mask_file_of_another_size_keeps_the_observed_pixels(run_dir, photos, tmp_path):
    observed = np.random.default_rng(0).random((MODEL_SIZE, MODEL_SIZE)) < 0.2
    # At twice the model's size, in 2x2 blocks: nearest-neighbour resizing gives back ``observed`` exactly.
    Image.fromarray(np.kron(observed, np.ones((2, 2))).astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "cat.png"
    options = ["--mask", str(tmp_path / "mask.png"), "--size", str(MODEL_SIZE), "--out", str(out)]
    result = inpaint(run_dir, "--image", str(photos["chelsea.png"]), *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert png_size(out) == (MODEL_SIZE, MODEL_SIZE)
    completed = decode_image(out)
    given = square_resize(decode_image(photos["chelsea.png"]), MODEL_SIZE)  # the non-square photo's centre square
    mask = torch.from_numpy(observed).expand(3, -1, -1)
    assert torch.equal(completed[mask], given[mask])
    assert f"from {observed.sum()} of {MODEL_SIZE**2} pixels (the model read them at 32x32" in result.stdout
    assert png_size(tmp_path / "cat_comparison.png")[0] > 2 * png_size(tmp_path / "cat_comparison.png")[1]
    assert result.stdout.count("wrote ") == 2


@pytest.mark.slow
@pytest.mark.parametrize("side", [64, 48, 256])  # above the model's size: twice it, a ratio not whole, the default
def test_the_observed_pixels_are_kept_at_every_output_size(run_dir, photos, tmp_path, side):
    """The mask is chosen at the output size: every pixel it observes there is the photo's own, none other is."""
    Image.fromarray((np.random.default_rng(1).random((75, 75)) < 0.2).astype(np.uint8) * 255).save(tmp_path / "m.png")
    size_option = [] if side == 256 else ["--size", str(side)]  # 256: by default, the cat photo's 300 px at most 256
    out = tmp_path / "cat_completed.png"
    options = ["--mask", str(tmp_path / "m.png"), *size_option, "--out", str(out)]
    result = inpaint(run_dir, "--image", str(photos["chelsea.png"]), *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    completed, own = decode_image(out), square_resize(decode_image(photos["chelsea.png"]), side)
    observed = (square_resize(decode_image(tmp_path / "m.png")[:1], side, nearest=True) > 127).expand(3, -1, -1)
    assert png_size(out) == (side, side) and 0.1 < observed.float().mean() < 0.3
    assert torch.equal(completed[observed], own[observed])
    assert (completed[~observed] != own[~observed]).float().mean() > 0.5  # the missing pixels are the model's


def test_the_comparison_shows_the_original_and_marks_missing_pixels_in_colour(run_dir, photos, tmp_path):
    out = tmp_path / "camera.png"
    options = ["--context", "10%", "--size", "64", "--out", str(out)]
    result = inpaint(run_dir, "--image", str(photos["camera.png"]), *options, cwd=tmp_path)  # a grayscale photo
    assert result.returncode == 0, result.stderr[-3000:]
    assert "observed (410 px) | HyperSiren | biharmonic at 64² | original" in result.stdout
    width, height = png_size(tmp_path / "camera_comparison.png")
    assert width > 3 * height * 0.8  # four tiles side by side
    figure = np.asarray(Image.open(tmp_path / "camera_comparison.png").convert("RGB")).astype(int)
    magenta = (figure[..., 0] > 200) & (figure[..., 1] < 60) & (figure[..., 2] > 200)
    assert magenta.sum() > 1000  # the missing pixels of a grayscale photo cannot pass for observed grey ones


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "side", "num_observed"),
    [
        (["--context", "100"], 256, 100),  # by default the crop's own side (300), at most 256
        (["--context", "5%", "--size", "48"], 48, round(0.05 * 48**2)),  # of the output's pixels
        (["--top-half", "--size", "64"], 64, 64**2 // 2),
        ([], 256, round(0.1 * 256**2)),  # by default 10% of the pixels
    ],
    ids=["count", "percentage", "top-half", "default"],
)
def test_context_options_and_render_size(run_dir, photos, tmp_path, options, side, num_observed):
    result = inpaint(run_dir, "--image", str(photos["chelsea.png"]), *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert png_size(tmp_path / "completed" / "chelsea.png") == (side, side)  # default --out: ./completed/
    assert (tmp_path / "completed" / "chelsea_comparison.png").is_file()
    assert f"{side}x{side} completion from {num_observed} of {side**2} pixels" in result.stdout
    assert ("completed at 256x256 (--size: up to 512)" in result.stdout) == ("--size" not in options)
    pixels = np.asarray(Image.open(tmp_path / "completed" / "chelsea.png").convert("RGB")).astype(float)
    assert pixels.std() > 1  # an image, not a blank


@pytest.mark.slow
def test_several_images_go_to_a_folder_one_png_each(run_dir, photos, tmp_path):
    paths = [str(path) for path in photos.values()]
    result = inpaint(run_dir, "--image", *paths, "--context", "50", "--size", "40", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("astronaut", "camera", "chelsea"):
        assert png_size(tmp_path / "out" / f"{name}.png") == (40, 40)
        assert (tmp_path / "out" / f"{name}_comparison.png").is_file()
    assert result.stdout.count("wrote ") == 6 and result.stdout.count("from 50 of 1600 pixels") == 3


@pytest.mark.slow
def test_held_out_figures_are_labelled_and_counted(run_dir, tmp_path, celeba_root):
    run_dir = shutil.copytree(run_dir, tmp_path / "run")  # the shared run keeps no figures: see the mistakes test
    result = inpaint(run_dir, "--data.root", str(celeba_root), "--num-images", "2", "--factor", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = run_dir.glob("figures_2images_root-celeba-*")  # 2 rows, not the run's own 8: a folder of their own
    assert not (run_dir / "figures").exists()
    figures = sorted(path.name for path in folder.iterdir())
    expected = [f"inpaint_{setting}.png" for setting in ("10", "100", "1000", "full", "overview", "top_half")]
    assert figures == sorted([*expected, "superres_2x.png"])
    assert f"wrote {len(figures)} figures" in result.stdout
    width, height = png_size(folder / "inpaint_100.png")  # 2 rows of 3 labelled tiles
    assert 1.2 * height < width < 1.8 * height


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (["--image", "{tmp}/absent.jpg"], "no image file at"),
        (["--image", "{tmp}"], "is a folder, not an image file"),
        (["--image", "{tmp}/text.png"], "text.png is corrupt or not an image"),
        (["--image", "{photo}", "--mask", "{tmp}/absent.png"], "no image file at"),
        (["--image", "{photo}", "--mask", "{tmp}/text.png"], "text.png is corrupt or not an image"),
        (["--image", "{photo}", "--mask", "{tmp}/black.png"], "observes no pixel"),
        (["--image", "{photo}", "--context", "0"], "--context: must observe at least 1 pixel"),
        (["--image", "{photo}", "--context", "-5"], "--context: must observe at least 1 pixel"),
        (["--image", "{photo}", "--context", "2000", "--size", "32"], "is more pixels than the 32x32 output has"),
        (["--image", "{photo}", "--context", "0%"], "a percentage must be above 0%"),
        (["--image", "{photo}", "--context", "150%"], "a percentage must be above 0% and at most 100%"),
        (["--image", "{photo}", "--context", "many"], "must be a pixel count"),
        (["--image", "{photo}", "--size", "0"], "--size: must be in [8, 512]"),
        (["--image", "{photo}", "--size", "600"], "--size: must be in [8, 512]"),
        (["--image", "{photo}", "{photo}", "--out", "{tmp}/one.png"], "is one PNG for 2 images"),
        (["--image", "{photo}", "--out", "{tmp}/lossy.jpg"], "completions are PNGs"),
        (["--context", "5"], "give them with --image"),
        (["--num-images", "-3"], "--num-images: must be in [1, 64]"),
        (["--display-scale", "0"], "--display-scale: must be in [1, 32]"),
    ],
)
def test_mistakes_are_one_line(run_dir, photos, tmp_path, options, phrase):
    (tmp_path / "text.png").write_text("not an image")
    Image.new("L", (64, 64)).save(tmp_path / "black.png")
    options = [option.format(tmp=tmp_path, photo=photos["astronaut.jpg"]) for option in options]
    result = inpaint(run_dir, *options, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], lines
    assert not (run_dir / "figures").exists() and not (tmp_path / "completed").exists()  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (["--image", "{tmp}/photo.png", "--out", "{tmp}/photo.png"], "over the input"),
        (["--image", "{tmp}/photo.png", "--out", "{tmp}"], "over the input"),  # {tmp}/photo.png
        (["--image", "{tmp}/photo.png", "--out", "{tmp}/linked.png"], "over the input"),  # a hard link of it
        (["--image", "{tmp}/a_comparison.png", "--out", "{tmp}/a.png"], "over the input"),  # the comparison's name
        (["--image", "{photo}", "--mask", "{tmp}/photo.png", "--out", "{tmp}/photo.png"], "over the input"),
        (["--image", "{tmp}/photo.png", "{tmp}/photo_comparison.png", "--out", "out"], "would be written twice"),
        (["--image", "{tmp}/photo.png", "{tmp}/Photo.jpg", "--out", "out"], "several --image files are named Photo"),
        (["--image", "{tmp}/photo.png", "--out", "{tmp}/file"], "is a file, not a folder"),
        (["--image", "{tmp}/photo.png", "--out", "{tmp}/folder.png"], "is a folder: name the PNG inside it"),
        (["--image", "{photo}", "--out", "{tmp}/photo.png"], "exists and hypersiren did not write it"),  # not an input
    ],
)
def test_no_output_replaces_an_input_or_another_output(run_dir, photos, tmp_path, options, phrase):
    for name in ("photo.png", "a_comparison.png", "photo_comparison.png", "Photo.jpg"):
        shutil.copy(photos["camera.png"], tmp_path / name)
    os.link(tmp_path / "photo.png", tmp_path / "linked.png")
    (tmp_path / "file").write_text("a file where a folder would go")
    (tmp_path / "folder.png").mkdir()
    before = {path: path.read_bytes() if path.is_file() else None for path in tmp_path.rglob("*")}
    options = [option.format(tmp=tmp_path, photo=photos["astronaut.jpg"]) for option in options]
    result = inpaint(run_dir, *options, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and phrase in lines[0], result.stderr[-3000:]
    assert {path: path.read_bytes() if path.is_file() else None for path in tmp_path.rglob("*")} == before


@pytest.mark.slow
def test_a_rerun_replaces_its_own_completions(run_dir, photos, tmp_path):
    for attempt in range(2):
        result = inpaint(run_dir, "--image", str(photos["camera.png"]), "--size", "8", "--out", "out", cwd=tmp_path)
        assert result.returncode == 0, (attempt, result.stderr[-3000:])
    assert written_here(tmp_path / "out" / "camera.png") and written_here(tmp_path / "out" / "camera_comparison.png")
    assert not written_here(photos["camera.png"])


def test_only_figures_with_missing_pixels_carry_their_legend(monkeypatch, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("inpaint_program", Path(__file__).parents[1] / "eval" / "inpaint.py")
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    legends = []
    monkeypatch.setattr(program, "save_labeled_grid", lambda *args, legend=None, **options: legends.append(legend))
    tile = torch.rand(1, 3, 4, 4)
    program.write_figure([tile, tile], ["input", "rendered"], tmp_path / "superres.png", missing=False)
    program.write_figure([tile, tile], ["observed", "completed"], tmp_path / "inpaint.png")
    assert legends == [None, program.MISSING_LEGEND]
    source = Path(spec.origin).read_text()
    assert "[upsampled, rendered], labels, path, missing=False" in source  # the super-resolution figure's call


def test_a_runs_detail_weights_decide_how_much_of_the_models_detail_a_photo_gets(run_dir, photos, tmp_path):
    weighted = tmp_path / "run"
    shutil.copytree(run_dir, weighted)
    DetailWeights(densities=(1.0,), weights=(0.0,)).save(weighted)  # none of it: biharmonic of the photo's pixels
    observed = np.random.default_rng(3).random((64, 64)) < 0.1
    Image.fromarray(observed.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "astronaut.png"
    options = ["--mask", str(tmp_path / "mask.png"), "--size", "64", "--out", str(out)]
    result = inpaint(weighted, "--image", str(photos["astronaut.jpg"]), *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"0% of its detail kept at {observed.mean() * 4:.2g} observed pixels per model cell" in result.stdout
    photo = to_model_space(square_resize(decode_image(photos["astronaut.jpg"]), 64))[None]
    mask = torch.from_numpy(observed)[None, None]
    biharmonic = (to_unit_range(classical_fill("biharmonic", photo, mask))[0] * 255).round()
    assert (decode_image(out).float() - biharmonic).abs().max() <= 1  # the biharmonic fill, to the PNG's rounding

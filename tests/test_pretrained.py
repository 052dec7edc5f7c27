"""The pretrained runs in pretrained/ load and reproduce the held-out PSNR recorded beside them."""

import json
from pathlib import Path

import pytest

from hypersiren.across.checkpoint import load_run
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import evaluate_inpainting

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
RUNS = sorted(path.name for path in PRETRAINED.iterdir() if (path / "checkpoint.pt").is_file())


def test_the_default_and_cifar10_runs_are_there():
    assert {"celeba32", "cifar10"} <= set(RUNS)


@pytest.mark.parametrize("name", RUNS)
def test_a_pretrained_run_is_small_and_reproduces_its_recorded_psnr(name, request):
    run = PRETRAINED / name
    assert (run / "checkpoint.pt").stat().st_size <= 10 * 2**20
    (recorded_file,) = (run / "eval").glob("metrics*_limit32.json")
    recorded = json.loads(recorded_file.read_text())
    dataset = json.loads((run / "config.json").read_text())["data"]["dataset"]
    root = request.getfixturevalue(f"{dataset}_root")  # skips, saying why, where the shared data is absent
    config, model = load_run(run, data_root=str(root))
    images = load_images(config.data, recorded["split"], limit=32)
    setting = protocol_settings(images.shape[2:])[1]  # 10% of the pixels: 100 at 32x32
    results = evaluate_inpainting(model, images, mean_image=None, settings=(setting,), seed=recorded["seed"])
    for method in ("hypersiren", "hypersiren_pasted"):
        expected = recorded["results"][setting][method]["psnr"]
        assert results[setting][method]["psnr"] == pytest.approx(expected, abs=0.1)

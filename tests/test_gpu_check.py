"""eval/gpu_check.py and datasets/pack.py: the device check runs end to end from a packed copy (here on the CPU,
a few steps), and the packed copy is CelebA's own layout that every program reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fake_celeba

from hypersiren.across.config import DataConfig
from hypersiren.across.data import load_images

REPO = Path(__file__).resolve().parents[1]


def run(program: str, *options: str) -> subprocess.CompletedProcess:
    device = [] if program.startswith("datasets/") else ["--device", "cpu"]  # the dataset tools compute on no device
    command = [sys.executable, str(REPO / program), *device, *options]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )


def test_the_packed_copy_is_celeba_at_the_packed_size_close_to_the_originals(tmp_path):
    original = fake_celeba(tmp_path / "celeba")
    packed = tmp_path / "packed"
    result = run("datasets/pack.py", "--root", str(original), "--size", "16", "--quality", "100", "--out", str(packed))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((packed / "img_align_celeba").glob("*.webp"))) == 12 and "12 images" in result.stdout
    for split, count in (("train", 10), ("val", 2)):
        expected = load_images(DataConfig(root=str(original), image_size=16, cache=""), split)
        got = load_images(DataConfig(root=str(packed), image_size=16, cache=""), split)
        assert got.shape == expected.shape == (count, 3, 16, 16)
        assert (got.float() - expected.float()).abs().mean() < 8  # WebP of noise at q100: close, not equal


@pytest.mark.slow
def test_the_device_check_trains_and_scores_a_gpu_preset_beside_the_cpu_pretrained_model(tmp_path, celeba_root):
    options = ["train.max_steps=2", "train.batch_size=8", "train.compile=off", "data.train_limit=64"]
    options += ["train.eval_images=4", "train.log_every=1"]
    result = run(
        "eval/gpu_check.py",
        *("--skip-bench", "--presets", "celeba32", "--data-root", str(celeba_root), "--out", str(tmp_path / "runs")),
        *("--eval-images", "4", "--json", str(tmp_path / "report.json"), "--fills", str(tmp_path / "fills.json")),
        *(f"--train-option={option}" for option in options),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    preset = report["presets"]["celeba32"]
    assert preset["images_per_second"] > 0 and preset["gemm_percent"] > 0
    assert set(preset["held_out"]) == {"10", "100", "1000", "top_half", "images"}
    row = preset["held_out"]["100"]
    assert {"gpu", "cpu_pretrained", "classical", "fill"} <= set(row) and row["cpu_pretrained"] > row["gpu"]  # 2 steps
    assert "| GPU − CPU |" in result.stdout and "| best classical fill |" in result.stdout
    assert json.loads((tmp_path / "runs" / "celeba32" / "config.json").read_text())["train"]["hflip"] is True
    assert preset["steps"] == 2 and (tmp_path / "runs" / "exported" / "celeba32" / "checkpoint.pt").is_file()

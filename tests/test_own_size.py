"""eval/own_size.py end to end: every row scored at each output size from the same pixels, results that say what
they measured and are not replaced by a smaller evaluation."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import fake_celeba

from hypersiren.across.checkpoint import save_checkpoint
from hypersiren.across.config import RunConfig
from hypersiren.across.model import HyperSiren
from hypersiren.across.user_images import DetailWeights

REPO = Path(__file__).resolve().parents[1]


def own_size(run: Path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "eval" / "own_size.py"), "--run", str(run), "--device", "cpu", *options]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, check=False)


@pytest.fixture
def untrained_run(tmp_path, tiny_model_config) -> Path:
    """An untrained tiny model's run folder (tmp_path/run) over 40 fake CelebA faces."""
    config = RunConfig(model=tiny_model_config())
    config.data.root = str(fake_celeba(tmp_path / "celeba", count=40))
    torch.manual_seed(0)
    state = {"model": HyperSiren(config.model).state_dict(), "step": 0, "config": config.to_dict()}
    save_checkpoint(state, tmp_path / "run" / "checkpoint.pt")
    return tmp_path / "run"


@pytest.mark.slow
def test_every_row_is_scored_at_each_size_and_a_fuller_result_is_kept(tmp_path, untrained_run):

    result = own_size(tmp_path / "run", "--sizes", "32", "40", "--limit", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "run" / "eval" / "own_size.json").read_text())
    assert saved["num_images"] == 2 and saved["sizes"] == [32, 40] and saved["model_side"] == 32
    assert set(saved["results"]) == {"32", "40"}
    for side in ("32", "40"):
        assert set(saved["results"][side]) == {"1%", "10%"}
        for scores in saved["results"][side].values():
            assert set(scores) == {"hypersiren", "all_detail", "uncorrected", "biharmonic", "gaussian"}
            assert all(math.isfinite(row["psnr"]) for row in scores.values())
    at_own_size = saved["results"]["32"]["10%"]  # the model read every pixel exactly: nothing to correct
    assert at_own_size["hypersiren"]["psnr"] == at_own_size["uncorrected"]["psnr"]
    above = saved["results"]["40"]["10%"]  # no detail weights fitted: all of the model's detail kept
    assert saved["detail_weights"] is None and above["hypersiren"]["psnr"] == above["all_detail"]["psnr"]
    assert "| 40² 10% |" in (tmp_path / "run" / "eval" / "own_size.md").read_text()

    smaller = own_size(tmp_path / "run", "--sizes", "32", "--limit", "1")
    assert smaller.returncode == 2 and "holds a fuller evaluation" in smaller.stderr, smaller.stderr[-3000:]
    fewer_sizes = own_size(tmp_path / "run", "--sizes", "32", "--limit", "2")
    assert fewer_sizes.returncode == 2 and "sizes [32, 40], this one [32]" in fewer_sizes.stderr
    assert json.loads((tmp_path / "run" / "eval" / "own_size.json").read_text()) == saved


@pytest.mark.slow
def test_detail_weights_fitted_on_training_images_are_what_own_size_blends_by(tmp_path, untrained_run):
    command = [sys.executable, str(REPO / "eval" / "fit_detail.py"), "--run", str(tmp_path / "run"), "--device", "cpu"]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}

    def fit(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *options], capture_output=True, text=True, env=environment, check=False)

    too_small = fit("--sizes", "32")
    assert too_small.returncode == 2 and "above the model's 32x32" in too_small.stderr
    fitted = fit("--sizes", "48", "--shares", "0.05", "0.2", "--limit", "2")
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    detail = DetailWeights.of_run(tmp_path / "run")
    assert detail is not None and detail.densities == pytest.approx((115 / 1024, 461 / 1024), abs=1e-5)
    assert "| 48 | 115 |" in fitted.stdout

    result = own_size(tmp_path / "run", "--sizes", "40", "--limit", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "run" / "eval" / "own_size.json").read_text())
    assert saved["detail_weights"] == {"densities": list(detail.densities), "weights": list(detail.weights)}

"""End to end on real images: train/train.py, eval/evaluate.py and eval/inpaint.py as users run them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hypersiren.checkpoint import load_checkpoint, load_run
from hypersiren.data import load_images, to_model_space
from hypersiren.evaluation import evaluate_inpainting

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "model.latent_dim=64",
    "model.encoder_widths=[16,32,64]",
    "model.siren_hidden_features=64",
    "model.siren_hidden_layers=2",
    "model.hyper_hidden_features=64",
    "train.lr=1e-3",
    "train.batch_size=32",
    "train.eval_images=32",
    "data.train_limit=2000",
]


def train(run_dir: Path, data_root: Path, *overrides: str, launcher: tuple[str, ...] = (), wait: bool = True):
    command = [*(launcher or (sys.executable,)), str(REPO / "train" / "train.py"), "--out", str(run_dir)]
    command += ["--data-root", str(data_root), "--device", "cpu", *TINY, *overrides]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment)
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def history(run_dir: Path) -> dict[int, dict[str, float]]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return {entry["step"]: entry for entry in map(json.loads, lines)}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, request) -> Path:
    celeba_root = request.getfixturevalue("celeba_root")
    run_dir = tmp_path_factory.mktemp("run")
    result = train(run_dir, celeba_root, "--max-steps", "300", "train.image_every=150", "train.log_every=50")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_short_training_beats_the_mean_image_on_held_out_faces(trained_run):
    config, model = load_run(trained_run)
    mean_image = to_model_space(load_images(config.data, "train")).mean(dim=0)
    held_out = load_images(config.data, "val", limit=200)
    results = evaluate_inpainting(model, held_out, mean_image, settings=("100",))["100"]
    # The learned prior must beat filling the 924 missing pixels with the mean face by >= 1 dB.
    assert results["hypersiren"]["psnr"] > results["mean_image"]["psnr"] + 1.0, results


@pytest.mark.slow
def test_run_directory_holds_config_checkpoint_and_tensorboard_logs(trained_run):
    state = torch.load(trained_run / "checkpoint.pt", weights_only=True)  # no pickled code needed
    assert state["step"] == 300
    assert json.loads((trained_run / "config.json").read_text())["model"]["latent_dim"] == 64
    events = EventAccumulator(str(trained_run / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/image_mse", "held_out/psnr_100_context"} <= set(events.Tags()["scalars"])
    assert "held_out/context_prediction_truth" in events.Tags()["images"]
    held_out = [event.value for event in events.Scalars("held_out/psnr_100_context")]  # steps 150 and 300
    assert len(held_out) == 2 and held_out[1] > held_out[0]  # it kept learning (the training loss mixes 10-1024 contexts)


@pytest.mark.slow
def test_evaluate_and_inpaint_programs_write_tables_and_figures(trained_run):
    for program, extra in (("evaluate.py", ["--limit", "40"]), ("inpaint.py", ["--num-images", "3", "--display-scale", "1"])):
        result = subprocess.run(
            [sys.executable, str(REPO / "eval" / program), "--run", str(trained_run), "--device", "cpu", *extra],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((trained_run / "eval" / "metrics.json").read_text())
    assert metrics["num_images"] == 40 and set(metrics["results"]) == {"10", "100", "1000", "top_half", "full"}
    assert metrics["results"]["full"]["hypersiren_pasted"]["psnr"] == pytest.approx(100.0)  # all pixels given back
    assert "| HyperSiren (raw rendering) |" in (trained_run / "eval" / "metrics.md").read_text()
    with Image.open(trained_run / "figures" / "inpaint_100.png") as figure:  # 3 rows x (context|prediction|truth)
        assert figure.size == (3 * 34 + 2, 3 * 34 + 2)
    with Image.open(trained_run / "figures" / "superres_4x.png") as figure:
        assert figure.size == (2 * 130 + 2, 3 * 130 + 2)


def test_killed_run_resumes_with_the_same_losses(tmp_path, celeba_root):
    settings = ["--max-steps", "12", "train.log_every=1", "train.checkpoint_every=4", "train.image_every=1000"]
    reference = train(tmp_path / "reference", celeba_root, *settings)
    assert reference.returncode == 0, reference.stderr[-3000:]

    interrupted = tmp_path / "interrupted"
    process = train(interrupted, celeba_root, *settings, wait=False)
    deadline = time.monotonic() + 300
    while not ((interrupted / "history.jsonl").is_file() and len(history(interrupted)) >= 6):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint_step = load_checkpoint(interrupted / "checkpoint.pt")["step"]
    assert 4 <= checkpoint_step < 12  # it really was cut short

    resumed = train(interrupted, celeba_root, *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, actual = history(tmp_path / "reference"), history(interrupted)
    assert sorted(actual) == list(range(1, 13))
    for step in range(1, 13):
        assert actual[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-6, abs=1e-9), step


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, celeba_root):
    good = train(tmp_path, celeba_root, "--max-steps", "3", "train.image_every=1000")
    assert good.returncode == 0, good.stderr[-3000:]
    poisoned = train(tmp_path, celeba_root, "--max-steps", "6", "train.latent_weight=nan")  # resumes, then diverges
    assert poisoned.returncode != 0
    assert "non-finite loss nan" in poisoned.stderr and "last good checkpoint" in poisoned.stderr
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 3
    assert all(torch.isfinite(tensor).all() for tensor in state["model"].values())


def test_two_process_ddp_matches_one_process(tmp_path, celeba_root):
    # train.loss=mse: a mean over pixels, so a shard's loss averages to the whole batch's. (log_mse pools its
    # observed term over a process's batch: under DDP it is the mean of the per-process losses.)
    settings = ["--max-steps", "4", "train.log_every=1", "train.image_every=1000", "train.batch_size=8", "train.loss=mse"]
    single = train(tmp_path / "single", celeba_root, *settings)
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")
    ddp = train(tmp_path / "ddp", celeba_root, *settings, launcher=torchrun)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    expected, actual = history(tmp_path / "single"), history(tmp_path / "ddp")
    assert sorted(actual) == [1, 2, 3, 4]
    for step in actual:  # the same global batch and masks, split over 2 processes: the same optimization
        assert actual[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-4), step

"""End to end on real images: train/train.py, eval/evaluate.py and eval/inpaint.py as users run them."""

import copy
import io
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tqdm import tqdm

from hypersiren.across.checkpoint import load_checkpoint, load_run, save_checkpoint
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import evaluate_inpainting
from hypersiren.core.pixels import to_model_space

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--model.latent_dim=64",
    "--model.encoder_widths=[16,32,64]",
    "--model.siren_hidden_features=64",
    "--model.siren_hidden_layers=2",
    "--model.hyper_hidden_features=64",
    "--train.lr=1e-3",
    "--train.batch_size=32",
    "--train.eval_images=32",
    "--data.train_limit=2000",
]


def train(run_dir: Path, data_root: Path, *overrides: str, launcher: tuple[str, ...] = (), wait: bool = True):
    command = [*(launcher or (sys.executable,)), str(REPO / "train" / "train.py"), "--out", str(run_dir)]
    command += ["--data.root", str(data_root), "--device", "cpu", *TINY, *overrides]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    if not wait:  # Ctrl-C must reach it as at a terminal, even where this test runs with SIGINT ignored
        return subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def names_this_python(word: str) -> bool:
    """Whether a printed command's first word, run from here, is the interpreter running the tests."""
    return Path(word).is_file() and os.path.samefile(word, sys.executable)


def history(run_dir: Path) -> dict[int, dict[str, float]]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return {entry["step"]: entry for entry in map(json.loads, lines)}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, request) -> Path:
    celeba_root = request.getfixturevalue("celeba_root")
    run_dir = tmp_path_factory.mktemp("run")
    result = train(run_dir, celeba_root, "--train.max_steps", "300", "--train.image_every=150", "--train.log_every=50")
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
    # it kept learning (the training loss mixes 10-1024 contexts)
    assert len(held_out) == 2 and held_out[1] > held_out[0]


@pytest.mark.slow
def test_evaluate_and_inpaint_programs_write_tables_and_figures(trained_run):
    for program, extra in (
        ("evaluate.py", ["--limit", "40"]),
        ("inpaint.py", ["--num-images", "3", "--display-scale", "1"]),
    ):
        result = subprocess.run(
            [sys.executable, str(REPO / "eval" / program), "--run", str(trained_run), "--device", "cpu", *extra],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((trained_run / "eval" / "metrics_val_limit40.json").read_text())  # a partial evaluation
    assert metrics["num_images"] == 40 and set(metrics["results"]) == {"10", "100", "1000", "top_half", "full"}
    full, sparse = metrics["results"]["full"], metrics["results"]["100"]
    assert full["biharmonic"]["psnr"] is None and full["hypersiren"]["psnr"] > 10  # nothing to fill, only to render
    assert sparse["biharmonic"]["psnr_unobserved"] < sparse["biharmonic"]["psnr"]  # observed pixels are kept exactly
    scale_2x = metrics["scales"]["full"]["2"]  # from all 32x32 pixels against the true 64x64 images
    assert scale_2x["bicubic"] > 20 and scale_2x["hypersiren"] > 15
    assert set(metrics["scales"]) == {"full", "100"} and set(metrics["scales"]["100"]) == {"2", "2.5", "3", "4"}
    table = (trained_run / "eval" / "metrics_val_limit40.md").read_text()
    assert "| HyperSiren (raw rendering) |" in table and "| Biharmonic (scikit-image inpaint_biharmonic) |" in table
    assert (trained_run / "eval" / "metrics_val_limit40_psnr_vs_context.png").is_file()
    assert (trained_run / "eval" / "metrics_val_limit40_scale_4x.png").is_file()
    figures = trained_run / "figures_3images"  # 3 rows, not the run's own 8
    with Image.open(figures / "inpaint_100.png") as figure:  # 3 rows x (context|prediction|truth)
        assert 0.8 < figure.size[0] / figure.size[1] < 1.1  # 3 rows of 3 labelled tiles
    with Image.open(figures / "superres_4x.png") as figure:
        assert figure.size[1] > 1.3 * figure.size[0]  # 3 rows of 2 labelled tiles
    with Image.open(figures / "inpaint_overview.png") as figure:  # 3 rows of 10 labelled tiles
        assert figure.size[0] > 2.5 * figure.size[1]


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_losses(tmp_path, celeba_root):
    settings = [
        "--train.max_steps",
        "12",
        "--train.log_every=1",
        "--train.checkpoint_every=4",
        "--train.image_every=1000",
    ]
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


def all_finite(state) -> bool:
    return all(torch.isfinite(tensor).all() for tensor in state["model"].values())


@pytest.mark.slow
def test_divergence_on_resume_keeps_the_checkpoint_and_a_lower_lr_resumes_from_it(tmp_path, celeba_root):
    good = train(tmp_path, celeba_root, "--train.max_steps", "3", "--train.image_every=1000")
    assert good.returncode == 0, good.stderr[-3000:]
    # lr=1e6 from step 4 on: applied for real (it used to be ignored on resume), so step 5 diverges.
    diverged = train(tmp_path, celeba_root, "--train.max_steps", "6", "--train.lr=1e6")
    assert diverged.returncode == 2 and "Traceback" not in diverged.stderr  # an expected error, like every other
    message = diverged.stderr.strip().splitlines()[-1]
    assert "non-finite loss" in message and "at step 5; parameters were not updated" in message
    assert "checkpoint.pt, step 3) is intact" in message and "e.g. --train.lr 100000" in message
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 3 and all_finite(state)

    resumed = train(tmp_path, celeba_root, "--train.max_steps", "6", "--train.lr=1e-4")  # the advice, followed
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 6 and all_finite(state)
    cosine_at_step_6 = 0.5 * (1 + math.cos(math.pi * 5 / 6))  # default.toml's schedule, at the last step taken
    lrs = [group["lr"] for group in state["optimizer"]["param_groups"]]
    assert lrs == [pytest.approx(1e-4 * cosine_at_step_6)]  # the new lr (on its schedule), not the saved one


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_every", ["1", "5"])
def test_divergence_before_any_sound_checkpoint_says_so_and_saves_nothing(tmp_path, celeba_root, checkpoint_every):
    settings = ["--train.max_steps", "6", f"--train.checkpoint_every={checkpoint_every}", "--train.image_every=1000"]
    diverged = train(tmp_path, celeba_root, *settings, "--train.lr=1e6")  # step 1's update makes weights of ~1e6
    assert diverged.returncode == 2
    message = diverged.stderr.strip().splitlines()[-1]
    assert "at step 2; parameters were not updated and no checkpoint exists" in message
    assert "the run starts over" in message
    assert not (tmp_path / "checkpoint.pt").exists()  # the step-1 weights gave a non-finite loss: not kept

    restarted = train(tmp_path, celeba_root, *settings)  # the advice, followed: TINY's lr of 1e-3
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 6


@pytest.mark.slow
def test_divergence_from_the_checkpoint_itself_says_to_start_over(tmp_path, celeba_root):
    # The last step's weights are saved when the run ends, before any step tries them.
    ended = train(tmp_path, celeba_root, "--train.max_steps", "1", "--train.lr=1e6", "--train.image_every=1000")
    assert ended.returncode == 0, ended.stderr[-3000:]
    continued = train(tmp_path, celeba_root, "--train.max_steps", "3", "--train.image_every=1000")
    assert continued.returncode == 2
    message = continued.stderr.strip().splitlines()[-1]
    assert "at step 2" in message and "step 1) holds the very weights" in message and "delete it" in message
    (tmp_path / "checkpoint.pt").unlink()  # the advice, followed
    restarted = train(tmp_path, celeba_root, "--train.max_steps", "3", "--train.image_every=1000")
    assert restarted.returncode == 0, restarted.stderr[-3000:]


def assert_one_line_error(result, *phrases):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.mark.slow
def test_a_bad_override_on_resume_changes_nothing(tmp_path, celeba_root):
    first = train(tmp_path, celeba_root, "--train.max_steps", "2", "--train.log_every=1", "--train.image_every=1000")
    assert first.returncode == 0, first.stderr[-3000:]
    files = {name: (tmp_path / name).read_bytes() for name in ("config.json", "checkpoint.pt", "history.jsonl")}
    for override, phrase in [
        ("--train.max_context=2000", "train.max_context <= 1024"),
        ("--train.batch_size=0", "train.batch_size=0 must be >= 1"),
        ("--train.checkpoint_every=0", "train.checkpoint_every=0 must be >= 1"),
        ("--model.latent_dim=128", "cannot change the model of a trained run on resume (model.latent_dim 64 -> 128)"),
    ]:
        assert_one_line_error(train(tmp_path, celeba_root, "--train.max_steps", "3", override), phrase)
        assert {name: (tmp_path / name).read_bytes() for name in files} == files, override
    again = train(tmp_path, celeba_root, "--train.max_steps", "3", "--train.log_every=1", "--train.image_every=1000")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(history(tmp_path)) == [1, 2, 3]


@pytest.mark.slow
def test_resume_needs_only_the_checkpoint(tmp_path, celeba_root):
    settings = ["--train.log_every=1", "--train.checkpoint_every=2", "--train.image_every=1000"]
    first = train(tmp_path, celeba_root, "--train.max_steps", "4", *settings)
    assert first.returncode == 0, first.stderr[-3000:]
    text = (tmp_path / "history.jsonl").read_text()
    (tmp_path / "history.jsonl").write_text(text[: len(text) - 20])  # a full disk tore the last line (step 4)
    (tmp_path / "config.json").unlink()
    (tmp_path / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # left by a killed save
    resumed = train(tmp_path, celeba_root, "--train.max_steps", "6", *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "dropped 1 unreadable line" in resumed.stderr
    assert sorted(history(tmp_path)) == [1, 2, 3, 5, 6]
    assert json.loads((tmp_path / "config.json").read_text())["model"]["latent_dim"] == 64  # from the checkpoint
    assert not (tmp_path / ".checkpoint.pt.k1ll3d.tmp").exists()

    (tmp_path / "history.jsonl").unlink()
    resumed = train(tmp_path, celeba_root, "--train.max_steps", "7", *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert sorted(history(tmp_path)) == [7]


@pytest.mark.slow
def test_a_second_training_on_the_same_out_is_refused(tmp_path, celeba_root):
    running = train(tmp_path, celeba_root, "--train.max_steps", "100000", "--train.log_every=1", wait=False)
    try:
        deadline = time.monotonic() + 300
        while not ((tmp_path / "history.jsonl").is_file() and history(tmp_path)):
            assert running.poll() is None and time.monotonic() < deadline, "the first training ended early"
            time.sleep(0.05)
        twin = train(tmp_path, celeba_root, "--train.max_steps", "100000")
        assert_one_line_error(twin, "another training is running in", "choose another --out")
        assert running.poll() is None  # the first one goes on
    finally:
        running.kill()
        running.wait()


def test_an_out_folder_that_is_not_a_run_is_left_alone(tmp_path, celeba_root):
    (tmp_path / "config.json").write_text('{"photo": "camera"}\n')  # e.g. train/fit_image.py's results
    (tmp_path / "history.jsonl").write_text("precious\n")
    result = train(tmp_path, celeba_root, "--train.max_steps", "1")
    assert_one_line_error(result, "non-empty folder that holds no hypersiren run", "choose a new or empty folder")
    assert (tmp_path / "config.json").read_text() == '{"photo": "camera"}\n'
    assert (tmp_path / "history.jsonl").read_text() == "precious\n"


# A few steps on a few images: enough to reach every line of a training, fast.
FEW = ["--data.train_limit=64", "--train.batch_size=8", "--train.eval_images=8", "--train.image_every=1000"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; kill or a scheduler's time limit
def test_a_stopped_run_saves_the_step_it_reached_and_says_how_to_resume(tmp_path, celeba_root, stop):
    settings = [*FEW, "--train.max_steps", "100000", "--train.checkpoint_every=1000", "--train.log_every=1"]
    process = train(tmp_path, celeba_root, *settings, wait=False)
    deadline = time.monotonic() + 300
    while not ((tmp_path / "history.jsonl").is_file() and len(history(tmp_path)) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(stop)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    message = stderr.strip().splitlines()[-1]
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["step"]  # long before the first checkpoint step, 1000
    assert saved >= 2 and max(history(tmp_path)) in (saved, saved - 1)  # the step under way was finished, not lost
    assert re.match(
        rf"interrupted at step {saved} of 100000; {re.escape(str(tmp_path))}/checkpoint.pt holds step {saved}\.",
        message,
    )
    command = shlex.split(message.partition("Resume from it with the same command: ")[2])
    assert names_this_python(command[0]) and command[1:4] == [str(REPO / "train" / "train.py"), "--out", str(tmp_path)]


@pytest.mark.slow
@pytest.mark.parametrize("size", [8, 16, 64])
def test_every_program_keeps_the_density_protocol_at_any_size(tmp_path, celeba_root, size):
    options = [f"--data.image_size={size}", f"--train.max_context={size * size}", "--train.max_steps=2"]
    options += ["--train.fine_points=64"] if size < 64 else []
    result = train(tmp_path, celeba_root, *FEW, *options)
    assert result.returncode == 0, result.stderr[-3000:]
    settings = protocol_settings((size, size))
    assert f"| PSNR (dB) | {' | '.join(settings[:-1])} |" in result.stdout.splitlines()  # the end-of-training table
    for program, extra in (("evaluate.py", ["--limit", "3"]), ("inpaint.py", ["--num-images", "2"])):
        command = [sys.executable, str(REPO / "eval" / program), "--run", str(tmp_path), "--device", "cpu", *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics_val_limit3.json").read_text())
    assert tuple(metrics["results"]) == settings
    assert set(metrics["scales"]) == {"full", settings[1]}  # from all pixels and from 10% of them
    assert set(metrics["scales"]["full"]) == ({"2"} if size == 64 else {"2", "2.5", "3", "4"})  # truths <= 128 px
    assert {f"inpaint_{setting}.png" for setting in settings} <= {
        p.name for p in (tmp_path / "figures_2images").iterdir()
    }


def test_a_step_too_large_for_memory_is_refused_before_anything_is_written(tmp_path, celeba_root):
    result = train(tmp_path / "run", celeba_root, "--data.image_size=1024", "--train.batch_size=4096")
    assert_one_line_error(result, "a training step of 4096 signals of 1024x1024", "GiB", "lower train.batch_size")
    assert not (tmp_path / "run").exists() and "decoding" not in result.stderr


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_holding_another_models_state(tmp_path, celeba_root):
    first = train(tmp_path, celeba_root, *FEW, "--train.max_steps", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    for broken, phrase in [
        ("optimizer", "optimizer state does not match its model (its exp_avg of parameter 0 is (5,)"),
        ("model", "weights do not match its config's model (1 tensors differ"),
    ]:
        edited = copy.deepcopy(state)
        if broken == "optimizer":
            edited["optimizer"]["state"][0]["exp_avg"] = torch.zeros(5)
        else:
            name = next(iter(edited["model"]))
            edited["model"][name] = torch.zeros(5)
        save_checkpoint(edited, tmp_path / "checkpoint.pt")
        before = (tmp_path / "checkpoint.pt").read_bytes()
        result = train(tmp_path, celeba_root, *FEW, "--train.max_steps", "2")
        assert_one_line_error(result, phrase)
        assert "decoding" not in result.stderr and (tmp_path / "checkpoint.pt").read_bytes() == before


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, request) -> tuple[Path, subprocess.CompletedProcess]:
    """A 2-step training to its end, logging every step, and what it printed."""
    celeba_root = request.getfixturevalue("celeba_root")
    run_dir = tmp_path_factory.mktemp("finished")
    result = train(run_dir, celeba_root, "--train.max_steps", "2", "--train.log_every=1", "--train.eval_images=8")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_a_training_ends_with_its_held_out_table_and_the_next_commands(finished_run):
    run_dir, result = finished_run
    lines = result.stdout.strip().splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("| PSNR (dB) |"))
    assert lines[header] == "| PSNR (dB) | 10 | 100 | 1000 | top_half |"  # the protocol's settings but full
    number, best_fill = r"\d+\.\d\d", r"\d+\.\d\d \((nearest|linear|biharmonic)\)"
    assert re.fullmatch(rf"\| HyperSiren, observed pixels pasted( \| {number}){{4}} \|", lines[header + 2])
    best_prior = r"\d+\.\d\d \((gaussian|neighbours)\)"
    assert re.fullmatch(rf"\| best data-driven prior( \| {best_prior}){{4}} \|", lines[header + 3])
    assert re.fullmatch(rf"\| best classical fill( \| {best_fill}){{4}} \|", lines[header + 4])
    assert "8 val images" in lines[header - 1]
    assert lines[-5:-3] == [f"TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}", "next:"]
    commands = [shlex.split(line.partition("#")[0]) for line in lines[-3:]]  # the interpreter that ran, not `python`
    assert all(names_this_python(command[0]) for command in commands)
    scripts = [Path(command[1]).resolve() for command in commands]
    assert scripts == [REPO / "eval" / "evaluate.py", REPO / "eval" / "inpaint.py", REPO / "eval" / "inpaint.py"]
    assert [command[2:] for command in commands] == [["--run", str(run_dir)]] * 2 + [
        ["--run", str(run_dir), "--image", "YOUR_PHOTO.jpg"]
    ]
    assert "Scoring 8 held-out images" in result.stdout and "evaluating" in result.stderr  # no minute of silence
    assert f"checkpoint: {run_dir / 'checkpoint.pt'} (step 2)" in lines


def test_the_end_of_training_table_is_what_evaluate_gives_the_run(finished_run):
    run_dir, result = finished_run  # trained with fine points: evaluate renders each pixel as the mean over its area
    config, model = load_run(run_dir)
    images = load_images(config.data, config.data.eval_split, limit=8)
    printed = next(line for line in result.stdout.splitlines() if line.startswith("| HyperSiren, observed"))
    scores = evaluate_inpainting(model, images, mean_image=None, settings=("10", "100", "1000", "top_half"))
    assert printed.split("|")[2:6] == [f" {scores[setting]['hypersiren_pasted']['psnr']:.2f} " for setting in scores]


def test_tensorboard_gets_the_learning_rate_and_held_out_grids_large_enough_to_see(finished_run):
    run_dir, _ = finished_run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    cosine = [0.5 * (1 + math.cos(math.pi * step / 2)) for step in (0, 1)]  # default.toml's schedule, steps 1 and 2
    assert [event.value for event in events.Scalars("train/lr")] == pytest.approx([1e-3 * share for share in cosine])
    (grid,) = events.Images("held_out/context_prediction_truth")  # 8 rows of context | prediction | truth
    assert grid.width >= 3 * 128 and grid.height >= 8 * 128


def test_rerunning_a_finished_run_says_so_before_decoding_anything(finished_run, celeba_root):
    run_dir, _ = finished_run
    files = {name: (run_dir / name).read_bytes() for name in ("config.json", "checkpoint.pt", "history.jsonl")}
    again = train(run_dir, celeba_root, "--train.max_steps", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "decoding" not in again.stderr  # no dataset read for nothing
    message = again.stdout.strip().splitlines()[-1]
    assert f"{run_dir} has already finished: its checkpoint is at step 2, train.max_steps=2" in message
    assert "rerun with a higher --train.max_steps" in message
    command = shlex.split(message.partition("to evaluate it: ")[2])
    assert names_this_python(command[0]) and command[1:] == ["eval/evaluate.py", "--run", str(run_dir)]
    assert {name: (run_dir / name).read_bytes() for name in files} == files


@pytest.mark.slow
def test_resuming_says_so_and_what_a_longer_run_does_to_the_schedule(finished_run, celeba_root, tmp_path):
    run_dir = shutil.copytree(finished_run[0], tmp_path / "run")  # the finished run stays at step 2 for other tests
    preset = REPO / "train" / "default.toml"  # as the command that started it may name it: not read on resume
    longer = train(run_dir, celeba_root, "--train.max_steps", "4", "--train.eval_images=8", "--config", str(preset))
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert f"warning: --config {preset} is not read on resume: the run goes on with its checkpoint's config" in (
        longer.stderr
    )
    assert (
        f"resuming {run_dir} from step 2 of 4 (its checkpoint); the cosine schedule now decays from 0.001 to 0 over "
        "4 steps (it was 0.001 over 2), so the learning rate at step 2 is 0.0005 instead of 0"
    ) in longer.stdout


@pytest.mark.slow
def test_a_folder_smaller_than_the_batch_gets_a_batch_size_that_fits(tmp_path):
    (tmp_path / "images").mkdir()
    for index in range(16):  # every 10th image is held out: 15 train the model
        Image.new("RGB", (40, 40), (index * 10, 0, 0)).save(tmp_path / "images" / f"{index:02d}.png")
    folder = ["--data.dataset", "folder", "--data.cache", "", "--train.max_steps", "1"]  # batch_size: 32 in TINY
    result = train(tmp_path / "run", tmp_path / "images", *folder)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "train.batch_size=32 exceeds the 15 training images: give --train.batch_size 15" in result.stderr
    assert "decoding 15 train images at 32x32" in result.stderr  # the bar says what it decodes
    assert not (tmp_path / "run").exists()  # a start that fails leaves no folder, no train.lock, behind
    fits = train(tmp_path / "run", tmp_path / "images", *folder, "--train.batch_size", "15")
    assert fits.returncode == 0, fits.stderr[-3000:]


@pytest.fixture(scope="module")
def program(load_program):
    return load_program("train/train.py")


@pytest.mark.parametrize(
    ("preset", "expected"),
    [([], {"lr": "0.001", "max_steps": "6000"}), (["--config", "train/paper.toml"], {"lr": "5e-05"})],
)
def test_help_shows_what_the_preset_in_use_will_run(preset, expected, program, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")  # no help text wrapped
    monkeypatch.setattr(sys, "argv", ["train.py", *preset, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        program.parse_args()
    assert exit_info.value.code == 0
    help_text, shown = capsys.readouterr().out, "train/paper.toml" if preset else "train/default.toml"
    for field, value in expected.items():
        option = rf"\n  --train\.{field} \w+\s+\w[^\n]* \(default from {shown}: {re.escape(value)}\)\n"
        assert re.search(option, help_text), help_text


def test_the_progress_bar_shows_the_batchs_psnr_in_db(program):
    class Sink:  # the run folder and TensorBoard, which this test does not read
        def log(self, *args) -> None: ...
        def add_scalar(self, *args) -> None: ...

    bar = tqdm(total=10, file=io.StringIO())
    program.log(Sink(), Sink(), bar, 5, {"loss": -2.77, "image_mse": 0.04, "lr": 1e-3})  # MSE on [-1, 1]
    assert bar.postfix == "psnr=20.00 dB"  # 0.04 / 4 = 0.01 on [0, 1]: 20 dB


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path, celeba_root):
    # train.loss=mse: a mean over pixels, so a shard's loss averages to the whole batch's. (log_mse pools its
    # observed term over a process's batch: under DDP it is the mean of the per-process losses.)
    settings = [
        "--train.max_steps",
        "4",
        "--train.log_every=1",
        "--train.image_every=1000",
        "--train.batch_size=8",
        "--train.loss=mse",
    ]
    single = train(tmp_path / "single", celeba_root, *settings)
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")
    ddp = train(tmp_path / "ddp", celeba_root, *settings, launcher=torchrun)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    expected, actual = history(tmp_path / "single"), history(tmp_path / "ddp")
    assert sorted(actual) == [1, 2, 3, 4]
    for step in actual:  # the same global batch and masks, split over 2 processes: the same optimization
        assert actual[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-4), step

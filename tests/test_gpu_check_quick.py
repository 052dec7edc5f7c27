"""eval/gpu_check.py --quick: parts stopped where their budget ends keep what they measured, the sync check watches
train.py's step across epoch boundaries, the device scores are evaluate.py's, the classical fills' come from a cache,
and the report keeps every call's Markdown; end to end on the CPU (its sync part skipped, saying so)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import fake_celeba

from hypersiren.across.checkpoint import load_run
from hypersiren.across.config import RunConfig
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import ShuffledBatches
from hypersiren.across.evaluation import evaluate_inpainting
from hypersiren.across.model import HyperSiren

REPO = Path(__file__).resolve().parents[1]
PARTS = ["sync", "loop", "bench", "train", "score"]


@pytest.fixture
def gpu_check(load_program):
    return load_program("eval/gpu_check.py")


def check(*options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "eval" / "gpu_check.py"), "--device", "cpu", "--quick", *options]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=900, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )


def test_a_part_stops_where_its_budget_ends_and_keeps_what_it_measured(gpu_check):
    def measure(entry):
        entry["first"] = 1
        time.sleep(30)
        entry["second"] = 2

    entry, started = {}, time.perf_counter()
    gpu_check.run_part(measure, entry, seconds=0.2)
    assert time.perf_counter() - started < 5
    assert entry["first"] == 1 and "second" not in entry and entry["stopped"] == "its budget of 0 s ran out"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    finished = {}
    gpu_check.run_part(lambda entry: entry.update(done=True), finished, seconds=5)
    assert finished["done"] and "stopped" not in finished and finished["seconds"] < 5


def test_a_budget_that_runs_out_while_a_training_stops_waits_for_it_to_end(gpu_check):
    """The training saves its step on SIGTERM (here: a second's work); the check moves on only once it has ended."""
    saving = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: (time.sleep(1), sys.exit(130)))\n"
    child = subprocess.Popen([sys.executable, "-c", saving + "print('ready', flush=True)\ntime.sleep(60)"], stdout=-1)
    assert child.stdout.readline() == b"ready\n"
    with pytest.raises(gpu_check.BudgetSpent), gpu_check.deadline(0.2):
        gpu_check.stop(child)
    assert child.returncode == 130


def test_the_sync_check_watches_steps_across_two_epoch_boundaries_and_names_one_that_waits(
    gpu_check, monkeypatch, tiny_model_config
):
    config = RunConfig.load(gpu_check.GPU_PRESETS["celeba32"])
    config.model = tiny_model_config()
    config.train.compile = "off"
    modes, epochs = [], []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    indices = ShuffledBatches.indices

    def watched(batches, step):
        if modes[-1:] == ["error"]:
            epochs.append(step // batches.batches_per_epoch)
        return indices(batches, step)

    monkeypatch.setattr(ShuffledBatches, "indices", watched)
    result = gpu_check.sync_check(config, "cpu", batch_size=2)
    assert modes == ["error", "default"] and result == {"batch": 2, "steps": "2-5", "synced_at_step": None}
    assert sorted(set(epochs)) == [1, 2]  # two batches an epoch: steps 2-5 start epochs 1 and 2

    calls = iter(range(100))
    batch = gpu_check.bench.recipe_batch  # called once a step

    def syncing(*arguments, **keywords):
        if next(calls) == 3:
            raise RuntimeError("called a synchronizing CUDA operation\nthe traceback's other lines")
        return batch(*arguments, **keywords)

    monkeypatch.setattr(gpu_check.bench, "recipe_batch", syncing)
    result = gpu_check.sync_check(config, "cpu", batch_size=2)
    assert result["synced_at_step"] == 3 and result["error"] == "called a synchronizing CUDA operation"
    assert modes[-1] == "default"


def test_device_scores_are_evaluate_inpaintings_and_the_classical_ones_are_computed_once(
    gpu_check, monkeypatch, tmp_path, tiny_model_config
):
    torch.manual_seed(0)
    model = HyperSiren(tiny_model_config()).eval()
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    settings = protocol_settings((16, 16))[:-1]
    expected = evaluate_inpainting(model, images, mean_image=None, settings=settings)
    ours = gpu_check.mean_psnr_table({"gpu": partial(gpu_check.pasted, model)}, images, settings, "cpu")
    cache = tmp_path / "fills.json"
    classical = gpu_check.classical_psnrs(images, settings, cache)
    for setting in settings:
        assert ours[setting]["gpu"] == pytest.approx(expected[setting]["hypersiren_pasted"]["psnr"], abs=1e-4)
        assert set(classical[setting]) == {"nearest", "linear", "biharmonic"}
        for fill, score in classical[setting].items():
            assert score == pytest.approx(expected[setting][fill]["psnr"], abs=1e-4)

    def unused(*arguments):
        raise AssertionError("a cached image set was filled again")

    monkeypatch.setattr(gpu_check, "classical_fill", unused)
    assert gpu_check.classical_psnrs(images, settings, cache) == classical
    other = images.clone()
    other[0, 0, 0, 0] ^= 1  # one pixel of another image set: not the cached scores
    with pytest.raises(AssertionError, match="filled again"):
        gpu_check.classical_psnrs(other, settings, cache)


def test_the_report_keeps_every_calls_markdown_and_a_new_device_starts_another(gpu_check, monkeypatch, tmp_path):
    path = tmp_path / "report.json"
    for call in ("first", "second"):
        monkeypatch.setattr(sys, "argv", ["gpu_check.py", f"--{call}"])
        report = gpu_check.Report(path, "cpu")
        report.add(f"# {call}", value=call)
        report.add("## part")
    saved = json.loads(path.read_text())
    assert saved["calls"] == [
        {"options": ["--first"], "markdown": "# first\n\n## part"},
        {"options": ["--second"], "markdown": "# second\n\n## part"},
    ]
    assert saved["value"] == "second"
    monkeypatch.setattr(gpu_check.bench, "device_name", lambda device: "another device")
    gpu_check.Report(path, "cpu").add("# another")
    assert [call["markdown"] for call in json.loads(path.read_text())["calls"]] == ["# another"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--budget-s", "60"], "--budget-s applies to --quick: add --quick"),
        (["--batch-size", "8"], "--batch-size applies to --quick: add --quick"),
        (["--quick", "--skip-bench"], "--skip-bench applies to the full check"),
    ],
)
def test_options_of_one_mode_are_refused_in_the_other(gpu_check, monkeypatch, capsys, options, message):
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--device", "cpu", *options])
    with pytest.raises(SystemExit) as stopped:
        gpu_check.parse_args()
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_quick_on_a_spent_budget_stops_its_parts_and_still_writes_their_rows(tmp_path):
    report = tmp_path / "report.json"
    options = ["--budget-s", "2", "--batch-size", "2", "--rounds", "1", "--fills", str(tmp_path / "fills.json")]
    options += ["--data-root", str(fake_celeba(tmp_path / "celeba")), "--out", str(tmp_path / "runs")]
    result = check(*options, "--json", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(report.read_text())
    quick = saved["quick"]
    assert list(quick) == PARTS and "CUDA only" in quick["sync"]["skipped"]
    assert "stopped" in quick["loop"] and "stopped" in quick["train"] and quick["train"]["celeba32"]["stopped"]
    assert "no checkpoint" in quick["score"]["celeba32"]
    assert sum(part["seconds"] for part in quick.values()) < 2 + 20  # the budget, and the stops' waits
    markdown = saved["calls"][0]["markdown"]
    assert markdown.count("Stopped: its budget of") >= 2 and "no interval logged" in markdown
    assert "## celeba32: not scored, no checkpoint" in markdown and markdown in result.stdout.replace("\n\n\n", "\n\n")
    # the GEMM rate printed is the one measured, in a unit that shows it (the CPU's is well under 1 TFLOP/s)
    printed = re.search(r"fp32 GEMM: (\S+) TFLOP/s", result.stdout)
    assert saved["gemm_flops_per_second"] > 0
    assert float(printed.group(1)) == pytest.approx(saved["gemm_flops_per_second"] / 1e12, rel=1e-2)


@pytest.mark.slow
def test_quick_trains_exports_and_scores_a_gpu_preset_with_every_part_measured(tmp_path, celeba_root):
    report, fills, runs = tmp_path / "report.json", tmp_path / "fills.json", tmp_path / "runs"
    train = ["train.max_steps=8", "train.batch_size=8", "train.compile=off", "data.train_limit=64"]
    train += ["train.eval_images=4", "train.log_every=1", "train.checkpoint_every=4"]
    options = ["--batch-size", "4", "--rounds", "1", "--eval-images", "4", "--budget-s", "600", "--fills", str(fills)]
    options += ["--data-root", str(celeba_root), "--out", str(runs), "--json", str(report)]
    result = check(*options, *(f"--train-option={option}" for option in train))
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(report.read_text())
    quick = saved["quick"]
    assert list(quick) == PARTS and not any("stopped" in part for part in quick.values())
    for name in ("celeba32", "celeba64"):  # stopped once it had logged five intervals: at least four counted
        assert quick["loop"][name]["intervals"] >= 4 and quick["loop"][name]["images_per_second"] > 0
    assert [row["mode"] for row in quick["bench"]["rows"]] == ["eager, fp32"] and quick["bench"]["rows"][0][
        "batch"
    ] == 4
    assert quick["train"]["celeba32"]["stopped"] is False and quick["score"]["celeba32"] == "scored"
    preset = saved["presets"]["celeba32"]
    assert preset["steps"] == preset["max_steps"] == 8 and preset["images_per_second"] > 0
    assert set(preset["held_out"]) == {"10", "100", "1000", "top_half", "images"}
    assert {"gpu", "cpu_pretrained", "classical", "fill"} <= set(preset["held_out"]["100"])
    exported = runs / "exported" / "celeba32" / "checkpoint.pt"
    assert exported.stat().st_size <= 16 * 2**20 < (runs / "celeba32" / "checkpoint.pt").stat().st_size
    assert "optimizer" not in torch.load(exported, weights_only=True)
    config, _ = load_run(exported.parent, data_root=str(celeba_root))
    assert config.train.max_steps == 8 and len(json.loads(fills.read_text())["image_sets"]) == 1
    assert "| GPU − CPU |" in result.stdout and "| best classical fill |" in result.stdout

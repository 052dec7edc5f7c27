"""eval/evaluate.py: where its results go, what it reads, and what it prints first."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hypersiren.across.checkpoint import save_checkpoint
from hypersiren.across.config import RunConfig
from hypersiren.across.evaluation import require_not_fuller
from hypersiren.across.model import HyperSiren
from hypersiren.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TABLE_ROW = "| HyperSiren (raw rendering) |"


@pytest.fixture(scope="module")
def run_dir(tiny_model_config, tmp_path_factory, celeba_root) -> Path:
    """An untrained tiny run whose saved dataset root is relative, as a preset's is."""
    run_dir = tmp_path_factory.mktemp("run")
    config = RunConfig(model=tiny_model_config())
    config.data.root = os.path.relpath(celeba_root, REPO)
    config.data.train_limit = 500  # the baselines fit the images the run learned from: fewer, faster
    torch.manual_seed(0)
    state = {"model": HyperSiren(config.model).state_dict(), "step": 0, "config": config.to_dict()}
    save_checkpoint(state, run_dir / "checkpoint.pt")
    return run_dir


def evaluate(run_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """eval/evaluate.py run from ``cwd``, not the repository: relative roots must not depend on it."""
    command = [sys.executable, str(REPO / "eval" / "evaluate.py"), "--run", str(run_dir), "--device", "cpu", *args]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=environment, check=False)


def test_a_partial_evaluation_writes_its_own_file(run_dir, tmp_path):
    full = {"num_images": 780, "note": "the full held-out evaluation"}
    (run_dir / "eval").mkdir(exist_ok=True)
    (run_dir / "eval" / "metrics.json").write_text(json.dumps(full))
    result = evaluate(run_dir, "--limit", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert TABLE_ROW in result.stdout and "metrics_val_limit8.json" in result.stdout
    assert json.loads((run_dir / "eval" / "metrics_val_limit8.json").read_text())["num_images"] == 8
    assert json.loads((run_dir / "eval" / "metrics.json").read_text()) == full  # untouched


@pytest.mark.slow
def test_an_unwritable_run_folder_still_prints_the_table(run_dir, tmp_path):
    (tmp_path / "a_file").write_text("")  # unwritable as a read-only folder, even for root
    result = evaluate(run_dir, "--limit", "4", "--out", str(tmp_path / "a_file" / "eval"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert TABLE_ROW in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: Not a directory")


def copy_of_celeba(celeba_root: Path, folder: Path, count: int, code: str) -> Path:
    """A CelebA root holding the first ``count`` validation images as split ``code`` (1: val, 2: test)."""
    (folder / "img_align_celeba").mkdir(parents=True)
    lines = [line.split() for line in (celeba_root / "list_eval_partition.txt").read_text().splitlines()]
    names = [name for name, split in lines if split == "1"][:count]
    for name in names:
        (folder / "img_align_celeba" / name).write_bytes((celeba_root / "img_align_celeba" / name).read_bytes())
    (folder / "list_eval_partition.txt").write_text("".join(f"{name} {code}\n" for name in names))
    return folder


@pytest.mark.slow
def test_a_separate_test_folder_keeps_the_runs_training_images(run_dir, tmp_path, celeba_root):
    test_root = copy_of_celeba(celeba_root, tmp_path / "celeba_test", count=5, code="2")  # a test split only
    result = evaluate(run_dir, "--data.root", str(test_root), "--split", "test", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (written,) = (run_dir / "eval").glob("metrics_test_root-celeba_test-*.json")  # named by its root
    metrics = json.loads(written.read_text())
    assert (metrics["split"], metrics["num_images"], metrics["data_root"]) == ("test", 5, str(test_root))


@pytest.mark.slow
def test_a_subset_of_the_held_out_split_never_replaces_the_full_evaluation(run_dir, tmp_path, celeba_root):
    full = {"num_images": 780, "note": "the full held-out evaluation"}
    (run_dir / "eval").mkdir(exist_ok=True)
    (run_dir / "eval" / "metrics.json").write_text(json.dumps(full))
    subset = copy_of_celeba(celeba_root, tmp_path / "celeba", count=3, code="1")  # the same split, 3 of its images
    result = evaluate(run_dir, "--data.root", str(subset), "--scales", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "eval" / "metrics.json").read_text()) == full  # untouched
    (written,) = (run_dir / "eval").glob("metrics_root-celeba-*.json")
    assert json.loads(written.read_text())["num_images"] == 3


def test_a_result_that_measured_more_is_replaced_only_when_asked(tmp_path):
    measured = {"num_images": 8, "data_root": "../shared/data/celeba", "seed": 0, "ablation": None}
    saved = measured | {"ablation": "runs/pixel", "scales": {"full": {}}, "results": {}}
    path = tmp_path / "metrics.json"
    for earlier, lost in [
        (saved | {"num_images": 780}, "780 images, this one 8"),
        (saved | {"data_root": "/elsewhere"}, "data root /elsewhere"),
        (saved | {"seed": 3}, "seed 3, this one 0"),
        (saved, "ablation runs/pixel, this one none"),
        (saved | {"ablation": None, "scales": {"full": {"2": {}, "4": {}}}}, "scales 4, this one 2"),
    ]:
        path.write_text(json.dumps(earlier))
        with pytest.raises(ConfigError, match=f"holds a fuller evaluation .*{lost}.*--replace"):
            require_not_fuller(path, measured, scales=["2"])
    path.write_text(json.dumps(saved | {"ablation": None}))
    require_not_fuller(path, measured, scales=["2"])  # the same measurement: replaced


def test_an_ablation_trained_on_other_data_is_refused(run_dir, tmp_path, tiny_model_config):
    other = RunConfig(model=tiny_model_config())
    other.data.dataset, other.data.root = "cifar10", "../shared/data/cifar10"
    state = {"model": HyperSiren(other.model).state_dict(), "step": 0, "config": other.to_dict()}
    save_checkpoint(state, tmp_path / "cifar" / "checkpoint.pt")
    result = evaluate(run_dir, "--ablation", str(tmp_path / "cifar"), "--limit", "2", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "was trained on cifar10 32x32, the run on celeba 32x32" in lines[-1], lines


def test_a_file_that_is_no_evaluation_is_never_replaced(tmp_path):
    for text in ["my own notes", '{"num_images": 3}', "[1, 2]"]:
        (tmp_path / "metrics.json").write_text(text)
        with pytest.raises(ConfigError, match="metrics.json exists and is not a result hypersiren wrote"):
            require_not_fuller(tmp_path / "metrics.json", {"num_images": 3}, scales=[])
    require_not_fuller(tmp_path / "absent.json", {"num_images": 3}, scales=[])

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
from hypersiren.across.model import HyperSiren

REPO = Path(__file__).resolve().parents[1]
TABLE_ROW = "| HyperSiren (raw rendering) |"


@pytest.fixture(scope="module")
def run_dir(tiny_model_config, tmp_path_factory, celeba_root) -> Path:
    """An untrained tiny run whose saved dataset root is relative, as a preset's is."""
    run_dir = tmp_path_factory.mktemp("run")
    config = RunConfig(model=tiny_model_config())
    config.data.root = os.path.relpath(celeba_root, REPO)
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


def test_an_unwritable_run_folder_still_prints_the_table(run_dir, tmp_path):
    (tmp_path / "a_file").write_text("")  # unwritable as a read-only folder, even for root
    result = evaluate(run_dir, "--limit", "4", "--out", str(tmp_path / "a_file" / "eval"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert TABLE_ROW in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: Not a directory")


def test_a_separate_test_folder_keeps_the_runs_training_images(run_dir, tmp_path, celeba_root):
    test_root = tmp_path / "celeba_test"
    (test_root / "img_align_celeba").mkdir(parents=True)
    lines = [line.split() for line in (celeba_root / "list_eval_partition.txt").read_text().splitlines()]
    names = [name for name, code in lines if code == "1"][:5]
    for name in names:
        (test_root / "img_align_celeba" / name).write_bytes((celeba_root / "img_align_celeba" / name).read_bytes())
    (test_root / "list_eval_partition.txt").write_text("".join(f"{name} 2\n" for name in names))  # a test split only
    result = evaluate(run_dir, "--data.root", str(test_root), "--split", "test", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "eval" / "metrics_test.json").read_text())
    assert (metrics["split"], metrics["num_images"]) == ("test", 5)

"""Checkpoints: written atomically, read back with ``torch.load(weights_only=True)``."""

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from hypersiren.config import RunConfig
    from hypersiren.model import HyperSiren


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or not a hypersiren checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves the old file or the new one, never half of one.

    ``state`` must hold only tensors, numbers, strings and containers of them,
    so it loads with ``weights_only=True`` (no pickled code runs on load).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train first (train/train.py --out RUN_DIR) or fix the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a hypersiren checkpoint ({type(error).__name__}: {error}); "
            "delete it to restart, or point to an intact one"
        ) from error
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} holds no 'model' entry: not a hypersiren checkpoint")
    return state


def load_run(
    run_dir: str | Path, device: str | torch.device = "cpu", data_root: str | None = None
) -> tuple["RunConfig", "HyperSiren"]:
    """The config and trained model (eval mode) of a run directory written by train/train.py.

    ``data_root`` replaces the dataset folder saved with the run, for data that moved since training.
    """
    from hypersiren.config import RunConfig  # here, not at the top: config imports the data stack
    from hypersiren.model import HyperSiren

    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / "checkpoint.pt", device)
    config = RunConfig.from_dict(state["config"])
    if data_root:
        config.data.root = data_root
    model = HyperSiren(config.model).to(device)
    model.load_state_dict(state["model"])
    return config, model.eval()

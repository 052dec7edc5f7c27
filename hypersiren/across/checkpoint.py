"""Checkpoints: written atomically, never with NaN or inf in them, read back with ``torch.load(weights_only=True)``."""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from hypersiren.across.config import RunConfig
    from hypersiren.across.model import HyperSiren


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, not a hypersiren checkpoint, or would hold non-finite values."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves the old file or the new one, never half of one.

    ``state`` must hold only tensors, numbers, strings and containers of them,
    so it loads with ``weights_only=True`` (no pickled code runs on load). A state
    with NaN or inf in a tensor is refused (``CheckpointError``) and the old file
    kept: a checkpoint is what a run falls back to, so it must be usable.
    """
    path = Path(path)
    non_finite = _non_finite_tensors(state)
    if non_finite:
        more = f" and {len(non_finite) - 1} more" if len(non_finite) > 1 else ""
        raise CheckpointError(
            f"refusing to save {path}: {non_finite[0]}{more} hold NaN or inf; the previous checkpoint is unchanged"
        )
    _write_atomically(path, lambda file: torch.save(state, file))


def write_text_atomically(text: str, path: str | Path) -> None:
    """Replace ``path`` by ``text`` all at once: a full disk or a kill leaves the old file, never a torn one."""
    _write_atomically(Path(path), lambda file: file.write(text.encode()))


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left behind; return them.

    Only safe while no other process writes ``path`` (train/train.py holds the run's lock).
    """
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp"))
    for temporary in stale:
        temporary.unlink(missing_ok=True)
    return stale


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
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} holds no 'model' entry: not a hypersiren checkpoint")
    return state


def checkpoint_config(state: dict[str, Any], path: str | Path) -> "RunConfig":
    """The validated run config embedded in a loaded checkpoint, whose weights it describes.

    Validation (shapes, parameter count) comes before any model is built, so a small
    checkpoint whose config asks for billions of parameters fails here, allocating nothing.
    """
    from hypersiren.across.config import ConfigError, RunConfig  # here, not at the top: config imports this module

    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} holds no 'config' entry: not a checkpoint written by train/train.py")
    try:
        return RunConfig.from_dict(state["config"]).validate()
    except ConfigError as error:
        raise CheckpointError(f"the config saved in {path} is not usable: {error}") from None


def load_run(
    run_dir: str | Path, device: str | torch.device = "cpu", data_root: str | None = None
) -> tuple["RunConfig", "HyperSiren"]:
    """The config and trained model (eval mode) of a run directory written by train/train.py.

    ``data_root`` (a command-line path) replaces the dataset folder saved with the run, for data
    that moved since training. The weights' shapes are compared with the config's model, built on
    the meta device, before the model is allocated.
    """
    from hypersiren.across.data import command_line_root
    from hypersiren.across.model import HyperSiren

    path = Path(run_dir) / "checkpoint.pt"
    state = load_checkpoint(path, device)
    config = checkpoint_config(state, path)
    if data_root:
        config.data.root = command_line_root(data_root)
    with torch.device("meta"):
        expected = {name: tensor.shape for name, tensor in HyperSiren(config.model).state_dict().items()}
    found = {name: getattr(tensor, "shape", None) for name, tensor in state["model"].items()}
    if found != expected:
        mismatched = sorted(name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name))
        raise CheckpointError(
            f"{path}'s weights do not match its config's model ({len(mismatched)} tensors differ, first "
            f"{mismatched[0]}: {found.get(mismatched[0])} saved, {expected.get(mismatched[0])} expected); "
            "the file is damaged or was edited: use an intact checkpoint"
        )
    model = HyperSiren(config.model).to(device)
    model.load_state_dict(state["model"])
    return config, model.eval()


def export_run(run_dir: str | Path, out_dir: str | Path) -> Path:
    """A trained run as a run folder to share: its weights, step and config, without the optimizer state.

    A third of the checkpoint's size (Adam keeps two moments per weight), and every eval
    program reads it as it reads the run (``load_run``); training does not resume from it.
    Returns the written checkpoint's path.
    """
    from hypersiren.across.config import RunConfig  # here, not at the top: config imports this module

    source = Path(run_dir) / "checkpoint.pt"
    state = load_checkpoint(source)
    config = checkpoint_config(state, source)
    exported = Path(out_dir) / "checkpoint.pt"
    save_checkpoint({"model": state["model"], "step": state.get("step"), "config": config.to_dict()}, exported)
    RunConfig.from_dict(config.to_dict()).save(exported.parent / "config.json")
    return exported


def _write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    # O_EXCL as mkstemp, but mode 0o666 under the umask (mkstemp's 0o600 would hide runs from their readers).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _non_finite_tensors(value: Any, name: str = "state") -> list[str]:
    """Names of the floating-point tensors in ``value`` (nested dicts, lists) holding NaN or inf."""
    return [entry for entry, tensor in _floating_tensors(value, name) if not bool(torch.isfinite(tensor).all())]


def _floating_tensors(value: Any, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _floating_tensors(item, f"{name}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _floating_tensors(item, f"{name}[{index}]")

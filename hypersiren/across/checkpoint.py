"""Checkpoints: written atomically, never with NaN or inf in them, read back with ``torch.load(weights_only=True)``."""

import json
import pickle
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypersiren.across.config import RunConfig, command_line_root
from hypersiren.across.data import REPO_ROOT
from hypersiren.across.memory import require_memory
from hypersiren.across.model import HyperSiren
from hypersiren.errors import CheckpointError, ConfigError
from hypersiren.files import write_atomically

# The trained runs that come with the repository: load_run(PRETRAINED / "celeba32") from any working directory.
PRETRAINED = REPO_ROOT / "pretrained"
PRIOR_BASIS = "prior.basis"  # the state-dict key of a model's Gaussian prior directions, exported in half precision


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
    write_atomically(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` into CPU memory; clear errors for missing or corrupt files.

    Loaded on the CPU whatever device saved it, so the only errors left are the file's: a
    checkpoint saved on a GPU loads on a machine without one, and the caller moves the tensors.
    A file-system error (permissions, I/O) or a lack of memory is raised as itself, not as corruption;
    a tensor holding NaN or inf is refused, naming it.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file"
        raise CheckpointError(f"{path} is {what}, not a checkpoint file: move it aside, or fix the path")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train first (train/train.py --out RUN_DIR) or fix the path")
    require_memory(  # loading holds every tensor of the file in memory at once
        path.stat().st_size,
        device="cpu",
        what=f"loading {path} ({path.stat().st_size / 2**30:.1f} GiB)",
        fix="load it on a machine with more memory, or check that it is the checkpoint you meant",
    )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, MemoryError):
        raise
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a hypersiren checkpoint ({_load_failure(error)}); "
            "delete it to restart, or point to an intact one"
        ) from error
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} holds no 'model' entry: not a hypersiren checkpoint")
    state["model"] = {_renamed_weight(name): tensor for name, tensor in state["model"].items()}
    non_finite = _non_finite_tensors(state)  # save_checkpoint never writes one: the file was damaged or edited
    if non_finite:
        more = f" (and {len(non_finite) - 1} more tensors)" if len(non_finite) > 1 else ""
        raise CheckpointError(
            f"{path} holds NaN or inf in {non_finite[0]}{more}: it would render garbage; use an intact checkpoint"
        )
    return state


# Modules moved since runs were saved (the decoders behind one interface), so that their checkpoints still load;
# the parameter order, which the optimizer state follows, did not change.
RENAMED_WEIGHTS = {"hypernet.": "decoder.hypernet.", "modulator.": "decoder.modulator.", "pixel_head.": "decoder."}


def _renamed_weight(name: str) -> str:
    for old, new in RENAMED_WEIGHTS.items():
        if name.startswith(old):
            return new + name.removeprefix(old)
    return name


def _load_failure(error: Exception) -> str:
    """Why torch refused a file, in one clause, without its advice to reload it with ``weights_only=False``: that
    runs whatever code the file holds, which is never safe for a file that is not what it should be."""
    if isinstance(error, pickle.UnpicklingError) or "weights_only" in str(error):
        return "it holds Python objects other than tensors, numbers and strings, which a safe load refuses"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def checkpoint_config(state: dict[str, Any], path: str | Path) -> RunConfig:
    """The validated run config embedded in a loaded checkpoint, whose weights it describes.

    Validation (shapes, parameter count) comes before any model is built, so a small
    checkpoint whose config asks for billions of parameters fails here, allocating nothing.
    """
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} holds no 'config' entry: not a checkpoint written by train/train.py")
    try:
        return RunConfig.from_dict(state["config"]).validate()
    except ConfigError as error:
        raise CheckpointError(f"the config saved in {path} is not usable: {error}") from None


def load_run(
    run_dir: str | Path, device: str | torch.device = "cpu", data_root: str | None = None, data_cache: str = ""
) -> tuple[RunConfig, HyperSiren]:
    """The config and trained model (eval mode) of a run directory written by train/train.py.

    ``data_root`` (a command-line path) replaces the dataset folder saved with the run, for data
    that moved since training. A run folder is data, not instructions: its saved ``data.cache`` and
    ``data.download`` are not followed (a shared folder would otherwise choose where its reader writes,
    and whether it goes online), so the config reads its data without downloading, through the cache
    ``data_cache`` (a command-line path; "": none, decoded into memory). The weights' shapes are
    compared with the config's model, built on the meta device, before the model is allocated.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise CheckpointError(f"{run_dir} is a file, not a run folder: pass the folder that holds checkpoint.pt")
    if not run_dir.is_dir():  # a path problem, not a run to train first
        raise CheckpointError(f"no run folder at {run_dir}{_from_where(run_dir)}: check the path")
    path = run_dir / "checkpoint.pt"
    state = load_checkpoint(path)
    config = checkpoint_config(state, path)
    not_followed = {"data.cache", "data.download"}
    warn_of_config_edits(run_dir, config, given=not_followed | ({"data.root"} if data_root else set()))
    if data_root:
        config.data.root = command_line_root(data_root)
    config.data.cache = command_line_root(data_cache) if data_cache else ""
    config.data.download = False
    require_matching_weights(state, config, path)
    model = run_model(config).to(device)
    model.load_state_dict(state["model"])
    return config, model.eval()


def require_image_run(config: RunConfig, run_dir: str | Path, program: str) -> None:
    """``ConfigError`` for a run of other signals than images (``model.dims`` 2) given to an image program."""
    if config.model.dims != 2:
        raise ConfigError(
            f"{run_dir} models {config.model.dims}-D signals ({config.data.dataset}), and {program} works on images: "
            "eval/evaluate.py scores and draws any run's held-out signals"
        )


def _from_where(path: Path) -> str:
    """Where a relative ``path`` was looked for, and the repository's folder of that name if it has one."""
    if path.is_absolute():
        return ""
    in_repository = REPO_ROOT / path
    found = f"; the repository's is {in_repository}" if in_repository.is_dir() else ""
    return f" (relative to the working directory {Path.cwd()}){found}"


def warn_of_config_edits(run_dir: str | Path, saved: RunConfig, given: set[str] = frozenset()) -> list[str]:
    """Warn (stderr) of the fields where ``run_dir/config.json`` differs from ``saved``, the checkpoint's own config,
    other than those ``given`` on the command line; return them as ``--section.field value`` options.

    config.json is a copy for people and tools: a hand edit to it changes nothing, which the user must hear
    rather than find out from the results; the warning says how an edit is made (an option).
    """
    path = Path(run_dir) / "config.json"
    try:
        copy = RunConfig.from_dict(json.loads(path.read_text())).to_dict()
    except FileNotFoundError:
        return []
    except (OSError, ValueError):  # ConfigError is a ValueError
        print(f"warning: {path} is not a readable config; the checkpoint's config is used", file=sys.stderr)
        return []
    options = [
        f"--{section}.{name} {_option_value(value)}"
        for section, fields in copy.items()
        for name, value in fields.items()
        if value != getattr(getattr(saved, section), name) and f"{section}.{name}" not in given
    ]
    if options:
        print(
            f"warning: {path} differs from the checkpoint's config ({', '.join(options)}) and is only a copy of it: "
            "the checkpoint's is used; to change a field, pass it as that option (model fields cannot change)",
            file=sys.stderr,
        )
    return options


def _option_value(value: Any) -> str:
    """``value`` as its command-line word: ``true``, ``[16,32]``, a path quoted for a shell."""
    return shlex.quote(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))


def run_model(config: RunConfig) -> HyperSiren:
    """The model of a run as it renders, in training and once loaded: each pixel the mean over its area (2x2
    points) where training taught the function between pixel centres (``train.fine_points``; it pays, README),
    its centre point elsewhere."""
    return HyperSiren(config.model, supersample=2 if config.train.fine_points else 1)


def require_matching_weights(state: dict[str, Any], config: RunConfig, path: str | Path) -> None:
    """``CheckpointError`` unless ``state["model"]`` has exactly the tensors of ``config``'s model, by name and shape.

    The model is built on the meta device, so a mismatch is found before anything is allocated.
    """
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


def require_resumable(state: dict[str, Any], config: RunConfig, path: str | Path) -> None:
    """``CheckpointError`` unless a training of ``config`` can resume from ``state``: a step count, and weights and
    optimizer state of ``config``'s model (``Optimizer.load_state_dict`` checks only how many tensors there are, so
    another model's Adam moments would load, then crash the first step). Checked on the meta device: before any
    dataset is decoded or model allocated."""
    missing = sorted({"optimizer", "step"} - state.keys())
    if missing:
        raise CheckpointError(
            f"{path} holds no {' or '.join(missing)}, so no training can resume from it (an export?): resume from "
            "the run it came from, or choose another --out to start over"
        )
    if isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0:
        raise CheckpointError(f"{path} holds step {state['step']!r}, not a step count: use an intact checkpoint")
    require_matching_weights(state, config, path)
    with torch.device("meta"):
        parameters = list(HyperSiren(config.model).parameters())
    problem = _optimizer_problem(state["optimizer"], parameters)
    if problem:
        raise CheckpointError(
            f"{path}'s optimizer state does not match its model ({problem}): the file is damaged or was edited; "
            "use an intact checkpoint, or another --out to start over"
        )


DETAIL_FILE = "detail_weights.json"  # a run's detail weights (user_images.DetailWeights, eval/fit_detail.py)


def export_run(run_dir: str | Path, out_dir: str | Path, data_root: str | None = None, replace: bool = False) -> Path:
    """A trained run as a run folder to share: its weights, step and config, without the optimizer state.

    A third of the checkpoint's size (Adam keeps two moments per weight), and every eval
    program reads it as it reads the run (``load_run``); training does not resume from it. The run's detail
    weights (``DETAIL_FILE``), fitted to its weights, go with them. A Gaussian prior's basis (a statistic of the
    training split, fixed before the first step) is stored in half precision: at 64×64 it is a third of the weights,
    and loading casts it back (``load_state_dict`` copies into the model's float32 buffer).
    ``data_root`` replaces the saved dataset folder, e.g. with one relative to the repository
    as presets name it, so the export works on other machines. Returns the checkpoint's path.

    An export into the run itself would drop the optimizer state it resumes from, so it is refused;
    a folder that already holds a checkpoint or config (another run, an earlier export) is replaced
    only if ``replace``, and then so is what was measured on the weights it held (``eval/``, detail weights):
    results that describe other weights must not sit beside these. Both are checked before the run is read.
    """
    source, exported = Path(run_dir) / "checkpoint.pt", Path(out_dir) / "checkpoint.pt"
    _require_export_target(Path(run_dir), Path(out_dir), replace)
    state = load_checkpoint(source)
    config = checkpoint_config(state, source)
    if data_root is not None:
        config.data.root = data_root
    if (Path(out_dir) / "eval").is_dir():  # the replaced weights' results; one that cannot go says so, not stays
        shutil.rmtree(Path(out_dir) / "eval")
    (Path(out_dir) / DETAIL_FILE).unlink(missing_ok=True)
    weights = {name: tensor.half() if name.endswith(PRIOR_BASIS) else tensor for name, tensor in state["model"].items()}
    save_checkpoint({"model": weights, "step": state.get("step"), "config": config.to_dict()}, exported)
    RunConfig.from_dict(config.to_dict()).save(exported.parent / "config.json")
    if (Path(run_dir) / DETAIL_FILE).is_file():  # fitted to these weights: they travel with them
        shutil.copyfile(Path(run_dir) / DETAIL_FILE, exported.parent / DETAIL_FILE)
    return exported


def _require_export_target(run_dir: Path, out_dir: Path, replace: bool) -> None:
    """``ConfigError`` unless ``out_dir`` may receive an export of ``run_dir`` (see ``export_run``)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a folder: choose a new folder for the export")
    if out_dir.resolve() == run_dir.resolve() or (run_dir.is_dir() and out_dir.is_dir() and out_dir.samefile(run_dir)):
        raise ConfigError(
            f"--out {out_dir} is the run itself: exporting there would drop its optimizer state, so it could never "
            "resume; choose a new folder"
        )
    held = [name for name in ("checkpoint.pt", "config.json") if (out_dir / name).exists()]
    if held and not replace:
        raise ConfigError(
            f"--out {out_dir} already holds {' and '.join(held)} (another run or an earlier export): choose a new "
            "folder, or pass --replace to overwrite it"
        )


def _optimizer_problem(optimizer_state: Any, parameters: list[nn.Parameter]) -> str | None:
    """What keeps Adam's ``state_dict()`` from fitting ``parameters``, or None."""
    groups = optimizer_state.get("param_groups") if isinstance(optimizer_state, dict) else None
    moments = optimizer_state.get("state") if isinstance(optimizer_state, dict) else None
    if not (
        isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict) and isinstance(moments, dict)
    ):
        return "it is not one group of parameters with their moments"
    indices = groups[0].get("params")
    count = len(indices) if isinstance(indices, list) else 0
    if count != len(parameters):
        return f"it is for {count} parameter tensors, the model has {len(parameters)}"
    for index, parameter in zip(indices, parameters):
        entry = moments.get(index, {})
        if not isinstance(entry, dict):
            return f"its entry of parameter {index} is not a dict"
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != parameter.shape:
                return f"its {name} of parameter {index} is {tuple(value.shape)}, the model's {tuple(parameter.shape)}"
    return None


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

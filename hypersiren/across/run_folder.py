"""A training run's folder, from its first step to its last and across restarts.

    checkpoint.pt    weights, optimizer state, step and config: all a run resumes from
    config.json      a copy of the config for people and tools
    history.jsonl    one line per logged step; a resumed run rewrites what came after its checkpoint, and a run
                     that starts over (no checkpoint) first keeps the old one as history.N.jsonl, saying so
    train.lock       marks the folder as a run (with checkpoint.pt); the lock a training holds is an flock on
                     the folder itself, so deleting this file, as tidying a finished run would, lets no
                     second training in
    tensorboard/     TensorBoard logs

A checkpoint is written only once the next step shows that its weights give a finite loss and
gradient (the last one excepted), so the checkpoint on disk is always a sound place to resume.
Ctrl-C and SIGTERM (``StopSignals``) end the step under way, and its weights are saved as the last step's are.
A start that fails before training (a bad data root, an interrupt while decoding) leaves the folder as it found it.
Only one process writes (``write=False`` on the others), but every process follows the schedule,
so that all of them say the same thing if the training diverges.
"""

import fcntl
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypersiren.across.checkpoint import (
    checkpoint_config,
    require_resumable,
    save_checkpoint,
    warn_of_config_edits,
)
from hypersiren.across.config import RunConfig, learning_rate, require_same_model
from hypersiren.across.data import REPO_ROOT
from hypersiren.errors import ConfigError
from hypersiren.files import append_line, remove_stale_temporaries, write_text
from hypersiren.results import write_json

LOCK = "train.lock"


class RunFolder:
    """The folder ``path`` of one training; ``write``: whether this process writes it (the main one)."""

    def __init__(self, path: str | Path, write: bool = True):
        self.path, self.write = Path(path), write
        self.checkpoint, self.history = self.path / "checkpoint.pt", self.path / "history.jsonl"
        self.saved_step: int | None = None  # the step of the checkpoint on disk, for the messages
        self.sound_step: int | None = None  # a checkpoint step, saved once the next step shows its weights finite
        self._lock: int | None = None  # the descriptor of the folder, flocked while this process trains
        self._claimed: list[Path] = []  # what claim created (folders, then the lock file), until start keeps them

    def checkpoint_stamp(self) -> tuple[int, int] | None:
        """(inode, mtime) of the checkpoint, None if there is none: tells whether it was replaced meanwhile.

        A non-empty folder that is not a run is someone else's: training there would overwrite its
        config.json and empty its history.jsonl, so it is refused here, before anything is read.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file: pass a folder for the run")
        is_run = any((self.path / name).exists() for name in (self.checkpoint.name, LOCK))
        if self.path.is_dir() and any(self.path.iterdir()) and not is_run:
            raise ConfigError(
                f"--out {self.path} is a non-empty folder that holds no hypersiren run (no checkpoint.pt, no {LOCK}): "
                "choose a new or empty folder"
            )
        try:
            status = self.checkpoint.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns

    def config(
        self,
        preset: RunConfig,
        overrides: dict[str, Any],
        state: dict[str, Any] | None,
        given_preset: str | None = None,
    ) -> RunConfig:
        """The validated config of this run: ``preset`` for a new run, the checkpoint ``state``'s own config on
        resume (config.json is only a copy for people and tools), then the command line's ``overrides``
        (``{"section.field": value}``); a resumed run's model cannot change. ``given_preset``: the --config
        the command line named, if it did; on resume it is not read, and the writing process says so."""
        saved = checkpoint_config(state, self.checkpoint) if state else None
        if saved:
            require_resumable(state, saved, self.checkpoint)  # before anything is decoded or built
            if self.write:
                warn_of_config_edits(self.path, saved, given=set(overrides))
                if given_preset:
                    print(ignored_preset_warning(given_preset, preset, saved, given=set(overrides)), file=sys.stderr)
        config = RunConfig.from_dict(saved.to_dict()) if saved else preset
        config.update(overrides)
        if saved:
            require_same_model(saved, config)
        return config.validate()

    def finished(self, state: dict[str, Any] | None, max_steps: int) -> bool:
        """Whether the checkpoint ``state`` already reached ``max_steps``. If so the writing process says so, and the
        two ways on (train longer, or evaluate): a rerun of a finished command is a question, not an error."""
        step = state.get("step") if state else None
        if not isinstance(step, int) or step < max_steps:
            return False
        if self.write:
            print(
                f"{self.path} has already finished: its checkpoint is at step {step}, train.max_steps={max_steps}. "
                f"To train on, rerun with a higher --train.max_steps (e.g. --train.max_steps {2 * step}); "
                f"to evaluate it: {program_command('eval/evaluate.py', '--run', str(self.path))}"
            )
        return True

    def claim(self, stamp: tuple[int, int] | None) -> None:
        """Create the folder and hold its lock until this process ends, so that a second training on the same
        --out is refused rather than interleaving checkpoints and history with this one; refuse to go on if the
        checkpoint is no longer the one of ``stamp``. Remove the checkpoint temporaries that killed runs left:
        with the lock held, no one else is writing them."""
        missing = [folder for folder in (self.path, *self.path.parents) if not folder.exists()]
        self.path.mkdir(parents=True, exist_ok=True)
        self._claimed = missing[::-1]  # outermost first; abandon removes them innermost first
        # The folder itself is locked, not a file in it: a file can be deleted while held, and a second training
        # would then lock a new file of the same name. A folder cannot be removed and recreated while it is in use.
        lock = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise ConfigError(
                f"another training is running in {self.path} (it holds the folder's lock): wait for it to end, "
                "or choose another --out"
            ) from None
        self._lock = lock
        if not (self.path / LOCK).exists():
            self._claimed.append(self.path / LOCK)
        (self.path / LOCK).touch()  # marks the folder as a run before anything else is written
        if self.checkpoint_stamp() != stamp:
            self.abandon()
            raise ConfigError(f"{self.checkpoint} changed while this run started (another training just ended?): rerun")
        remove_stale_temporaries(self.checkpoint)

    def release(self) -> None:
        """Let another training use the folder."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def abandon(self) -> None:
        """Undo ``claim`` after a start that failed before ``start`` (a bad data root, an unknown dataset, Ctrl-C
        while decoding): remove the lock file and the folders it created, if still empty, and release the lock.
        Otherwise the lock file would make the folder a run that holds nothing, which other programs refuse."""
        for path in reversed(self._claimed):
            try:
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink(missing_ok=True)
            except OSError:  # a folder someone else wrote into meanwhile is theirs: kept
                pass
        self._claimed = []
        self.release()

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], lr: float) -> int:
        """Load a checkpoint's weights and optimizer state (``config`` checked that they fit); return its step.

        The optimizer's saved learning rate is replaced by ``lr``: otherwise ``train.lr=...`` on resume
        would be recorded in config.json yet ignored.
        """
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.saved_step = state["step"]
        return state["step"]

    def start(self, config: RunConfig, step: int) -> None:
        """Save ``config`` (validated by ``config``) beside the run and keep the history logged up to ``step``.

        A run without a checkpoint starts over: a history there (a run killed before its first checkpoint, or
        whose checkpoint was deleted) is kept as ``history.N.jsonl`` rather than emptied, and the writing process
        says so. From here on the folder is the run's, whatever happens next (``abandon`` no longer applies)."""
        self._claimed = []
        if not self.write:
            return
        write_json(config.to_dict(), self.path / "config.json")
        if self.saved_step is None and self.history.is_file() and self.history.stat().st_size:
            number = 1
            while (self.path / f"history.{number}.jsonl").exists():
                number += 1
            kept = self.history.rename(self.path / f"history.{number}.jsonl")
            print(f"{self.path} holds no checkpoint, so the run starts over; its old history is kept as {kept.name}")
        write_text(logged_until(self.history, step) if self.saved_step is not None else "", self.history)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Add ``scalars`` of ``step`` to the history."""
        if self.write:
            append_line(json.dumps({"step": step, **scalars}), self.history)

    def keep_sound(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, config: RunConfig) -> None:
        """Step ``step`` just gave a finite loss and gradient, before its update: a checkpoint due at ``step`` is
        written now, its weights known to be sound."""
        if self.sound_step == step:
            self._save(step, model, optimizer, config)

    def stepped(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, config: RunConfig) -> None:
        """After the update that made ``step`` steps: the last step is saved at once, a checkpoint step once the
        next step shows it sound (``keep_sound``)."""
        if step == config.train.max_steps:
            self._save(step, model, optimizer, config)
        elif step % config.train.checkpoint_every == 0:
            self.sound_step = step

    def stopped(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, config: RunConfig) -> None:
        """Ctrl-C or SIGTERM (``StopSignals``) ended the training after ``step`` steps: they are saved, as the last
        step is (a run stopped at step 128 of 300 resumes from 128), unless the checkpoint already holds them."""
        if step > (self.saved_step or 0):
            self._save(step, model, optimizer, config)

    def _save(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, config: RunConfig) -> None:
        if self.write:
            save_checkpoint(checkpoint_state(model, optimizer, step, config), self.checkpoint)
        self.saved_step = step

    def divergence_message(self, loss: float, grad_norm: float, step: int, config: RunConfig) -> str:
        """Why training stopped at step ``step + 1`` and what to do, true whether a checkpoint exists and whatever
        it holds.

        Parameters are never updated from a non-finite step. A checkpoint is saved only once the next step
        shows its weights give a finite loss (the last one excepted), so an older checkpoint is a sound
        place to resume at a lower lr; a checkpoint of the very weights that just failed is not.
        """
        what = (
            f"error: non-finite loss {loss} / gradient norm {grad_norm} at step {step + 1}; parameters were not updated"
        )
        lower = f"a lower --train.lr (now {config.train.lr:g}; e.g. --train.lr {config.train.lr / 10:g})"
        if self.saved_step is None:
            return (
                f"{what} and no checkpoint exists (one is saved only once the step after it gives a finite loss). "
                f"Rerun the same command with {lower}: the run starts over."
            )
        if self.saved_step == step:
            return (
                f"{what}. The checkpoint (checkpoint.pt, step {step}) holds the very weights that gave it, "
                f"so resuming from it fails at any learning rate: delete it and rerun with {lower} to start over."
            )
        return (
            f"{what}. The checkpoint (checkpoint.pt, step {self.saved_step}) is intact and its weights gave a finite "
            f"loss. Rerun the same command with {lower} to resume from it."
        )

    def interrupted_message(self, step: int, config: RunConfig) -> str:
        """What Ctrl-C stopped, what is on disk, and the command that goes on from it."""
        launcher = f"torchrun --nproc-per-node {os.environ['WORLD_SIZE']}" if "WORLD_SIZE" in os.environ else None
        command = f"{launcher} {shlex.join(sys.argv)}" if launcher else shlex.join([_shown(sys.executable), *sys.argv])
        if self.saved_step is None:
            return (
                f"interrupted at step {step} of {config.train.max_steps}, before any checkpoint (one is saved every "
                f"{config.train.checkpoint_every} steps): rerun to start over: {command}"
            )
        return (
            f"interrupted at step {step} of {config.train.max_steps}; {self.checkpoint} holds step "
            f"{self.saved_step}. Resume from it with the same command: {command}"
        )


class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM (``kill``, a scheduler's time limit) while training, as a context manager: the
    first one is noted (``received``), and the loop ends at the end of the step under way, so the checkpoint then
    written holds one step's weights and optimizer state, never half an update; a second one stops at once
    (``KeyboardInterrupt``), for a step that takes too long. Main thread only, as every signal handler."""

    def __init__(self):
        self.received: int | None = None  # the first signal's number
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        self._previous = {number: signal.signal(number, self._note) for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exception: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _note(self, number: int, frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = number


def ignored_preset_warning(path: str, preset: RunConfig, saved: RunConfig, given: set[str]) -> str:
    """The line that says a --config ``path`` (loaded as ``preset``) is not read on resume, with the fields where it
    differs from ``saved``, the checkpoint's config, other than the options ``given`` now (which do apply)."""
    differing = [key for key in saved.keys() if key not in given and _field(preset, key) != _field(saved, key)]
    shown = ", ".join(differing[:4]) + (f" and {len(differing) - 4} more" if len(differing) > 4 else "")
    how = f"the preset differs in {shown}" if differing else "which the preset matches"
    return (
        f"warning: --config {path} is not read on resume: the run goes on with its checkpoint's config ({how}); "
        "options given now apply from the resumed step (to use the preset, train a new run with another --out)"
    )


def _field(config: RunConfig, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(config, section), name)


def resume_message(path: Path, step: int, saved: RunConfig, config: RunConfig) -> str:
    """What a resumed training does: the step it goes on from, and what becomes of the learning-rate schedule,
    which a new ``train.max_steps`` stretches (cosine) from this step on; ``saved``: the checkpoint's config."""
    message = f"resuming {path} from step {step} of {config.train.max_steps} (its checkpoint)"
    if config.train.lr_schedule != "cosine":
        return f"{message}; learning rate {config.train.lr:g}, constant"
    if saved.train.max_steps == config.train.max_steps and saved.train.lr == config.train.lr:
        return f"{message}; the cosine schedule goes on where it stopped"
    lr_at, was = f"{learning_rate(config.train, step):.3g}", f"{learning_rate(saved.train, step):.3g}"
    before = f"{saved.train.lr:g} over {saved.train.max_steps}" if saved.train.lr_schedule == "cosine" else "constant"
    return (
        f"{message}; the cosine schedule now decays from {config.train.lr:g} to 0 over {config.train.max_steps} steps "
        f"(it was {before}), so the learning rate at step {step} is {lr_at} instead of {was}"
    )


def program_command(script: str, *arguments: str) -> str:
    """A command to paste into this shell: the Python that is running now (a bare ``python`` may be another,
    without torch), and the repository's ``script`` (``"eval/evaluate.py"``) as seen from the working directory."""
    return shlex.join([_shown(sys.executable), _shown(str(REPO_ROOT / script)), *arguments])


def _shown(path: str) -> str:
    """``path`` relative to the working directory where it lies under it (``./python`` for a bare name)."""
    try:
        relative = Path(path).relative_to(Path.cwd())
    except ValueError:
        return path
    return str(relative) if len(relative.parts) > 1 else f"./{relative}"


def checkpoint_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, step: int, config: RunConfig
) -> dict[str, Any]:
    """Everything a run resumes from, its config included: a run folder needs nothing else."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "config": config.to_dict()}


def logged_until(history: Path, step: int) -> str:
    """The lines of ``history`` logged up to ``step`` (a resumed run rewrites what came after).

    A line a full disk or a kill left torn is dropped with a warning instead of blocking the
    resume; a missing history is an empty one.
    """
    if not history.is_file():
        return ""
    kept, unreadable = [], 0
    for line in history.read_text(errors="replace").splitlines():
        try:
            logged = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            unreadable += bool(line.strip())
            continue
        if isinstance(logged, int) and logged <= step:
            kept.append(line + "\n")
    if unreadable:
        print(f"warning: dropped {unreadable} unreadable line(s) of {history} (a torn write)", file=sys.stderr)
    return "".join(kept)

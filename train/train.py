"""Train encoder + hypernetwork on an image dataset.

    python train/train.py --out runs/celeba32                     # train/default.toml
    python train/train.py --config train/paper.toml --data.root ~/data/celeba --train.lr 1e-4 --out runs/paper
    torchrun --nproc-per-node 2 train/train.py --out runs/ddp

Every config field is an option, ``--section.field VALUE`` (see --help). Rerunning with the same
--out resumes from its last checkpoint, with the config saved in it; options given then apply
from the resumed step on (--train.lr, --train.grad_clip, --train.max_steps, ...), except
--model.* ones, which are refused: the checkpoint's weights are that model. A training ends by printing
its held-out PSNR beside the best classical fill, where its files are and the commands to run next;
Ctrl-C ends it with one line: the step reached, the checkpoint on disk and the command that resumes.
Before anything is written, a run whose step would not fit in memory (memory.training_bytes) is refused.
"""

import argparse
import dataclasses
import fcntl
import json
import math
import os
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from hypersiren.across.baseline_fill import CLASSICAL_FILLS
from hypersiren.across.checkpoint import (
    checkpoint_config,
    load_checkpoint,
    require_resumable,
    save_checkpoint,
)
from hypersiren.across.config import ConfigError, RunConfig, TrainConfig, parameter_count, require_same_model
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import ShuffledBatches, load_images, training_batch
from hypersiren.across.evaluation import METHODS, evaluate_inpainting, seeded_masks
from hypersiren.across.memory import require_memory, training_bytes
from hypersiren.across.model import HyperSiren
from hypersiren.across.objective import hypernetwork_loss
from hypersiren.cli import (
    EXIT_CODE,
    INTERRUPTED_EXIT_CODE,
    add_config_options,
    config_overrides,
    exits_cleanly,
    program,
)
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.figures import comparison_grid
from hypersiren.files import remove_stale_temporaries, write_text
from hypersiren.results import markdown_table

PRESETS = Path(__file__).parent
LOCK = "train.lock"  # held (flock) while a training runs; its presence also marks the folder as a run
TENSORBOARD_TILE = 128  # px per held-out tile in TensorBoard, at least


def parse_args() -> tuple[argparse.Namespace, RunConfig]:
    """The command line, and the preset it names (loaded once: --help shows its values)."""
    parser = program(__doc__)
    parser.add_argument("--out", required=True, help="run directory: config, checkpoint, TensorBoard logs")
    preset = add_config_options(parser, default_preset=PRESETS / "default.toml")
    return parser.parse_args(), preset


@exits_cleanly()
def main() -> None:
    args, preset = parse_args()
    run_dir = Path(args.out)
    checkpoint_path = run_dir / "checkpoint.pt"
    refuse_foreign_folder(run_dir)
    stamp = file_stamp(checkpoint_path)
    state = load_checkpoint(checkpoint_path) if stamp else None  # the weights, optimizer and config to resume
    config = run_config(
        args, preset=preset, state=state, checkpoint_path=checkpoint_path
    )  # validated, before any write
    is_main = os.environ.get("RANK", "0") == "0"
    if already_finished(run_dir, state, max_steps=config.train.max_steps, is_main=is_main):
        return  # before decoding a dataset for nothing
    require_training_memory(config, device=args.device, processes=int(os.environ.get("WORLD_SIZE", "1")))
    lock = claim_run_folder(run_dir) if is_main else None  # held until this process ends
    if is_main and file_stamp(checkpoint_path) != stamp:
        raise ConfigError(f"{checkpoint_path} changed while this run started (another training just ended?): rerun")

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if args.device == "cuda" else args.device)

    # uint8 (N, 3, S, S), decoded once
    train_images = load_images(config.data, "train", limit=config.data.train_limit or None).to(device)
    if config.train.batch_size > len(train_images):
        raise ConfigError(f"train.batch_size={config.train.batch_size} exceeds the {len(train_images)} training images")
    eval_images = load_images(config.data, config.data.eval_split, limit=config.train.eval_images).to(device)
    fine_images = None
    if config.train.fine_points:  # the same training images at twice the resolution
        fine_data = dataclasses.replace(config.data, image_size=2 * config.data.image_size)
        fine_images = load_images(fine_data, "train", limit=config.data.train_limit or None).to(device)
    torch.manual_seed(config.train.seed)
    model = HyperSiren(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)
    step = restore(model, optimizer, state, lr=config.train.lr) if state else 0
    saved_step = step if state else None  # the step of the checkpoint on disk, for the message if training diverges
    del state  # its tensors are in the model and optimizer now: no second copy for the whole run
    unsaved_step = None  # a checkpoint step whose weights are saved once the next step shows them finite
    trainable = DistributedDataParallel(model) if distributed else model
    if is_main:
        config.save(run_dir / "config.json")
        writer = SummaryWriter(run_dir / "tensorboard")
        history = run_dir / "history.jsonl"  # one line per logged step; a resumed run rewrites its tail
        write_text(logged_until(history, step) if saved_step is not None else "", history)

    batches = ShuffledBatches(num_images=len(train_images), batch_size=config.train.batch_size, seed=config.train.seed)
    autocast = torch.autocast("cuda", torch.bfloat16) if config.train.amp and device.type == "cuda" else nullcontext()
    shard = slice(rank * (config.train.batch_size // world), (rank + 1) * (config.train.batch_size // world))

    progress = tqdm(total=config.train.max_steps, initial=step, desc="training", disable=not is_main, unit="step")
    try:
        while step < config.train.max_steps:
            batch = training_batch(
                images=train_images,
                batches=batches,
                step=step,
                min_context=config.train.min_context,
                max_context=config.train.max_context,
                log_uniform=config.train.log_uniform_context,
                top_half_fraction=config.train.top_half_fraction,
                query_points=config.train.query_points,
                fine_images=fine_images,
                fine_points=config.train.fine_points,
                shard=shard,
            )
            for group in optimizer.param_groups:  # a function of the step, so a resumed run continues the schedule
                group["lr"] = learning_rate(config.train, step)
            with autocast:
                prediction = trainable(batch.image, batch.mask, batch.coords)
            loss, terms = hypernetwork_loss(
                prediction,
                batch.target,
                latent_weight=config.train.latent_weight,
                weight_weight=config.train.weight_weight,
                observed=batch.observed if config.train.loss == "log_mse" else None,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            if distributed:  # every rank sees the global batch's loss: logs match one process, all stop together on NaN
                loss = loss.detach().clone()
                for value in (loss, *terms.values()):
                    dist.all_reduce(value)
                    value /= world
            if not (math.isfinite(loss.item()) and math.isfinite(grad_norm.item())):
                progress.close()  # so that the message is the last line on the terminal
                print(divergence_message(loss.item(), grad_norm.item(), step, saved_step, config), file=sys.stderr)
                raise SystemExit(EXIT_CODE)
            if unsaved_step == step:  # the weights after this step just gave a finite loss and gradient: keep them
                if is_main:
                    save_checkpoint(checkpoint_state(model, optimizer, step, config), checkpoint_path)
                saved_step = step
            optimizer.step()
            step += 1
            progress.update()

            if is_main and step % config.train.log_every == 0:
                scalars = {"loss": loss.item(), "grad_norm": grad_norm.item()}
                scalars |= {name: value.item() for name, value in terms.items()}
                scalars["lr"] = optimizer.param_groups[0]["lr"]  # the rate of the step just taken
                progress.set_postfix(loss=f"{scalars['loss']:.4f}")
                for name, value in scalars.items():
                    writer.add_scalar(f"train/{name}", value, step)
                with history.open("a") as file:
                    file.write(json.dumps({"step": step, **scalars}) + "\n")
            if is_main and (step % config.train.image_every == 0 or step == config.train.max_steps):
                log_held_out(model, eval_images, writer, step)
            if step == config.train.max_steps:
                if is_main:
                    save_checkpoint(checkpoint_state(model, optimizer, step, config), checkpoint_path)
                saved_step = step
            elif step % config.train.checkpoint_every == 0:
                unsaved_step = step
        progress.close()
        if distributed:
            dist.destroy_process_group()
        if is_main:
            writer.close()
            print(end_summary(model, eval_images=eval_images, run_dir=run_dir, config=config))
            lock.close()
    except KeyboardInterrupt:
        progress.close()  # so that the message is the last line on the terminal
        if is_main:
            print(interrupted_message(run_dir, step=step, saved_step=saved_step, config=config), file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None


def learning_rate(train: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based) under ``train.lr_schedule``."""
    if train.lr_schedule == "cosine":
        return train.lr * 0.5 * (1.0 + math.cos(math.pi * step / train.max_steps))
    return train.lr


def refuse_foreign_folder(run_dir: Path) -> None:
    """A non-empty --out that is not a run is someone else's folder: training there would overwrite
    its config.json and empty its history.jsonl."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file: pass a folder for the run")
    is_run = any((run_dir / name).exists() for name in ("checkpoint.pt", LOCK))
    if run_dir.is_dir() and any(run_dir.iterdir()) and not is_run:
        raise ConfigError(
            f"--out {run_dir} is a non-empty folder that holds no hypersiren run (no checkpoint.pt, no {LOCK}): "
            "choose a new or empty folder"
        )


def claim_run_folder(run_dir: Path) -> IO[str]:
    """Create ``run_dir`` and hold its lock, so that a second training on the same --out is refused
    rather than interleaving checkpoints and history with this one. Remove checkpoint temporaries
    that killed runs left: with the lock held, no one else is writing them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = (run_dir / LOCK).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigError(
            f"another training is running in {run_dir} (it holds {LOCK}): wait for it to end, or choose another --out"
        ) from None
    remove_stale_temporaries(run_dir / "checkpoint.pt")
    return lock


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of ``path``, None if absent: tells whether a checkpoint was replaced meanwhile."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def run_config(
    args: argparse.Namespace, preset: RunConfig, state: dict[str, Any] | None, checkpoint_path: Path
) -> RunConfig:
    """The validated config of this run: the preset for a new run, the checkpoint's own config on resume
    (config.json is only a copy for people and tools), then the command line's overrides."""
    saved = checkpoint_config(state, checkpoint_path) if state else None
    if saved:
        require_resumable(state, saved, checkpoint_path)  # before anything is decoded or built
    config = RunConfig.from_dict(saved.to_dict()) if saved else preset
    config.override(config_overrides(args))
    if saved:
        require_same_model(saved, config)
    return config.validate()


def require_training_memory(config: RunConfig, device: str, processes: int) -> None:
    """Refuse a training whose step would not fit in ``device``'s memory (``memory.training_bytes``, a rough and
    high estimate), before anything is written or decoded; each of ``processes`` takes its share of the batch."""
    if config.train.batch_size % processes:
        raise ConfigError(f"train.batch_size={config.train.batch_size} must be divisible by the {processes} processes")
    batch, size = config.train.batch_size // processes, config.data.image_size
    points = (config.train.query_points or size * size) + config.train.fine_points
    require_memory(
        training_bytes(config.model, batch, size, points, parameters=parameter_count(config.model)),
        device=device,
        what=f"a training step of {batch} images of {size}x{size} and {points} points each",
        fix="lower train.batch_size, data.image_size, train.query_points, train.fine_points or the model's widths",
    )


def restore(model: HyperSiren, optimizer: torch.optim.Optimizer, state: dict[str, Any], lr: float) -> int:
    """Load a checkpoint's weights and optimizer state (``run_config`` checked that they fit); return its step.

    The optimizer's saved learning rate is replaced by ``lr``: otherwise ``train.lr=...`` on resume
    would be recorded in config.json yet ignored.
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:
        group["lr"] = lr
    return state["step"]


def checkpoint_state(
    model: HyperSiren, optimizer: torch.optim.Optimizer, step: int, config: RunConfig
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


def divergence_message(loss: float, grad_norm: float, step: int, saved_step: int | None, config: RunConfig) -> str:
    """Why training stopped at step ``step + 1`` and what to do, true whether a checkpoint exists and whatever it holds.

    Parameters are never updated from a non-finite step. A checkpoint is saved only once the next step
    shows its weights give a finite loss (the last one excepted), so an older checkpoint is a sound
    place to resume at a lower lr; a checkpoint of the very weights that just failed is not.
    """
    what = f"error: non-finite loss {loss} / gradient norm {grad_norm} at step {step + 1}; parameters were not updated"
    lower = f"a lower --train.lr (now {config.train.lr:g}; e.g. --train.lr {config.train.lr / 10:g})"
    if saved_step is None:
        return (
            f"{what} and no checkpoint exists (one is saved only once the step after it gives a finite loss). "
            f"Rerun the same command with {lower}: the run starts over."
        )
    if saved_step == step:
        return (
            f"{what}. The checkpoint (checkpoint.pt, step {step}) holds the very weights that gave it, "
            f"so resuming from it fails at any learning rate: delete it and rerun with {lower} to start over."
        )
    return (
        f"{what}. The checkpoint (checkpoint.pt, step {saved_step}) is intact and its weights gave a finite "
        f"loss. Rerun the same command with {lower} to resume from it."
    )


@torch.no_grad()
def log_held_out(model: HyperSiren, images: torch.Tensor, writer: SummaryWriter, step: int) -> None:
    """Held-out PSNR at 10% of the pixels (100 at 32x32) and a context | prediction |
    truth grid, its tiles enlarged (nearest, so pixels stay pixels) to at least ``TENSORBOARD_TILE`` px:
    TensorBoard shows 32x32 at 32 px."""
    model.eval()
    image = to_model_space(images)
    setting = protocol_settings(*images.shape[-2:])[1]  # 10%: 100 pixels at 32x32
    mask = seeded_masks(setting, len(images), *images.shape[-2:], seed=0).to(images.device)
    prediction, truth = to_unit_range(model.inpaint(image, mask)), to_unit_range(image)
    writer.add_scalar(f"held_out/psnr_{setting}_context", psnr(prediction, truth).mean().item(), step)
    grid = comparison_grid(truth[:8], mask[:8], prediction[:8])  # (C, H', W'): a row of 3 tiles per image
    scale = math.ceil(TENSORBOARD_TILE / min(images.shape[-2:]))
    writer.add_image(
        "held_out/context_prediction_truth", F.interpolate(grid[None], scale_factor=scale, mode="nearest")[0], step
    )
    model.train()


def interrupted_message(run_dir: Path, step: int, saved_step: int | None, config: RunConfig) -> str:
    """What Ctrl-C stopped, what is on disk, and the command that goes on from it."""
    launcher = f"torchrun --nproc-per-node {os.environ['WORLD_SIZE']}" if "WORLD_SIZE" in os.environ else "python"
    command = f"{launcher} {shlex.join(sys.argv)}"
    if saved_step is None:
        return (
            f"interrupted at step {step} of {config.train.max_steps}, before any checkpoint (one is saved every "
            f"{config.train.checkpoint_every} steps): rerun to start over: {command}"
        )
    return (
        f"interrupted at step {step} of {config.train.max_steps}; {run_dir / 'checkpoint.pt'} holds step "
        f"{saved_step}. Resume from it with the same command: {command}"
    )


def already_finished(run_dir: Path, state: dict[str, Any] | None, max_steps: int, is_main: bool) -> bool:
    """Whether the checkpoint ``state`` already reached ``max_steps``. If so the main process says so, and
    the two ways on (train longer, or evaluate): a rerun of a finished command is a question, not an error."""
    step = state.get("step") if state else None
    if not isinstance(step, int) or step < max_steps:
        return False
    if is_main:
        print(
            f"{run_dir} has already finished: its checkpoint is at step {step}, train.max_steps={max_steps}. "
            f"To train on, rerun with a higher --train.max_steps (e.g. --train.max_steps {2 * step}); "
            f"to evaluate it: python eval/evaluate.py --run {shlex.quote(str(run_dir))}"
        )
    return True


def end_summary(model: HyperSiren, eval_images: torch.Tensor, run_dir: Path, config: RunConfig) -> str:
    """The last lines of a training: how it inpaints held-out images beside the best classical fill (the bar it
    must clear, so the run ends with an answer rather than a loss), where its files are, and what to run next.

    ``eval_images``: uint8 ``(N, C, H, W)``; the masks are eval/evaluate.py's (seed 0).
    """
    model.eval()
    settings = protocol_settings(*eval_images.shape[-2:])[:-1]  # "full" has nothing to fill
    results = evaluate_inpainting(model=model, images=eval_images, mean_image=None, settings=settings)
    ours, classical = {"PSNR (dB)": METHODS["hypersiren_pasted"]}, {"PSNR (dB)": "best classical fill"}
    for setting, scores in results.items():  # scores: {method: {"psnr": mean dB, ...}}
        best = max(CLASSICAL_FILLS, key=lambda fill: scores[fill]["psnr"])
        ours[setting] = f"{scores['hypersiren_pasted']['psnr']:.2f}"
        classical[setting] = f"{scores[best]['psnr']:.2f} ({best})"
    run = shlex.quote(str(run_dir))
    return "\n".join(
        [
            f"\nHeld-out inpainting of {len(eval_images)} {config.data.eval_split} images (eval/evaluate.py's masks):",
            markdown_table([ours, classical]),
            f"\ncheckpoint: {run_dir / 'checkpoint.pt'} (step {config.train.max_steps})",
            f"TensorBoard: tensorboard --logdir {shlex.quote(str(run_dir / 'tensorboard'))}",
            "next:",
            f"  python eval/evaluate.py --run {run}    # the full held-out table",
            f"  python eval/inpaint.py --run {run}     # figures",
            f"  python eval/inpaint.py --run {run} --image YOUR_PHOTO.jpg",
        ]
    )


if __name__ == "__main__":
    main()

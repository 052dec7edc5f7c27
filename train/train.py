"""Train encoder + hypernetwork on an image dataset.

    python train/train.py --out runs/celeba32                     # train/default.toml
    python train/train.py --config train/paper.toml --data.root ~/data/celeba --train.lr 1e-4 --out runs/paper
    torchrun --nproc-per-node 2 train/train.py --out runs/ddp

Every config field is an option, ``--section.field VALUE`` (see --help). Rerunning with the same
--out resumes from its last checkpoint, with the config saved in it; options given then apply
from the resumed step on (--train.lr, --train.grad_clip, --train.max_steps, ...), except
--model.* ones, which are refused: the checkpoint's weights are that model. A training ends by printing
its held-out PSNR beside the best classical fill, where its files are and the commands to run next;
Ctrl-C or SIGTERM (kill, a scheduler's time limit) ends it after the step under way, saved as a checkpoint, with one
line: the step reached, the checkpoint on disk and the command that resumes (a second Ctrl-C stops at once).
A start that fails (a bad data root, an unknown dataset) leaves --out as it found it.
Before anything is written, a run whose step would not fit in memory (memory.training_bytes) is refused.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse
from pathlib import Path

from hypersiren.across.config import RunConfig, learning_rate
from hypersiren.cli import (
    EXIT_CODE,
    INTERRUPTED_EXIT_CODE,
    add_config_options,
    config_overrides,
    exits_cleanly,
    named_preset,
    parse_before_imports,
    program,
)

PRESETS = Path(__file__).parent


def parse_args() -> tuple[argparse.Namespace, RunConfig]:
    """The command line, and the preset it names (loaded once: --help shows its values)."""
    parser = program(__doc__)
    parser.add_argument("--out", required=True, help="run directory: config, checkpoint, TensorBoard logs")
    preset = add_config_options(parser, default_preset=PRESETS / "default.toml")
    return parser.parse_args(), preset


parse_before_imports(parse_args, __name__)

import dataclasses
import math
import os
import shlex
import signal
import sys
import time
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from hypersiren.across.baseline_fill import CLASSICAL_FILLS
from hypersiren.across.checkpoint import checkpoint_config, load_checkpoint, run_model
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import ShuffledBatches, load_images, model_space, recipe_batch
from hypersiren.across.evaluation import METHODS, evaluate_inpainting, fit_data_priors, seeded_masks
from hypersiren.across.model import HyperSiren
from hypersiren.across.run_folder import RunFolder, StopSignals, program_command, resume_message
from hypersiren.across.training import (
    FiniteWatch,
    gradient_step,
    process_device,
    require_step_memory,
    set_tf32,
    start_process,
)
from hypersiren.core.metrics import psnr
from hypersiren.core.pixels import to_unit_range
from hypersiren.errors import ConfigError
from hypersiren.figures import comparison_grid, series_figure
from hypersiren.results import markdown_table

TENSORBOARD_TILE = 128  # px per held-out tile in TensorBoard, at least


@exits_cleanly()
def main() -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill or a scheduler stops a run as Ctrl-C does
    args, preset = parse_args()
    run = RunFolder(args.out, write=os.environ.get("RANK", "0") == "0")  # the main process writes the folder
    stamp = run.checkpoint_stamp()
    state = load_checkpoint(run.checkpoint) if stamp else None  # the weights, optimizer and config to resume
    config = run.config(preset, overrides=config_overrides(args), state=state, given_preset=named_preset())
    if run.finished(state, max_steps=config.train.max_steps):
        return  # before decoding a dataset for nothing
    distributed = "WORLD_SIZE" in os.environ  # under torchrun
    device = process_device(args.device, local_rank=int(os.environ["LOCAL_RANK"]) if distributed else None)
    require_training_memory(config, device=device, processes=int(os.environ.get("WORLD_SIZE", "1")))
    if run.write:
        run.claim(stamp)  # held until this process ends
    try:  # until the run starts, a failure (a bad data root, Ctrl-C while decoding) leaves --out as it was
        start_process(device, distributed=distributed)
        images = load_training_images(config, device)
        set_tf32(config.train.tf32)
        torch.manual_seed(config.train.seed)
        model = run_model(config).to(device)  # its held-out table is evaluate.py's
        if config.model.prior_components and not state:  # fitted once; a resumed run's is in its checkpoint
            model.fit_prior(model_space(images.train))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)
        step = run.restore(model, optimizer, state, lr=config.train.lr) if state else 0
        if state and run.write:
            print(resume_message(run.path, step, saved=checkpoint_config(state, run.checkpoint), config=config))
        del state  # its tensors are in the model and optimizer now: no second copy for the whole run
        run.start(config, step)
    except BaseException:
        run.abandon()
        raise
    writer = SummaryWriter(run.path / "tensorboard") if run.write else None
    progress = tqdm(total=config.train.max_steps, initial=step, desc="training", disable=not run.write, unit="step")
    try:
        with StopSignals() as stop:
            train(run, config, model, optimizer, step, images, writer, progress, stop)
    except KeyboardInterrupt:
        progress.close()  # so that the message is the last line on the terminal
        if run.write:
            print(run.interrupted_message(step=progress.n, config=config), file=sys.stderr)  # n: the steps taken
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
    progress.close()
    if distributed:
        dist.destroy_process_group()
    if run.write:
        writer.close()
        print(
            f"\nScoring {len(images.eval)} held-out images at each setting, beside the classical and data-driven fills:"
        )
        print(end_summary(model, eval_images=images.eval, train_images=images.train, run_dir=run.path, config=config))
        run.release()


class TrainingImages(NamedTuple):
    train: torch.Tensor  # uint8 (N, C, S, S), decoded once
    fine: torch.Tensor | None  # the same images at 2S x 2S, for train.fine_points; None without
    eval: torch.Tensor  # uint8 (train.eval_images, C, S, S), held out


def load_training_images(config: RunConfig, device: torch.device) -> TrainingImages:
    """The training images (and their 2x versions for ``train.fine_points``) and the held-out ones, on ``device``."""
    limit = config.data.train_limit or None
    train_images = load_images(config.data, "train", limit=limit).to(device)
    if config.train.batch_size > len(train_images):  # a small folder: say which batch fits rather than shrink it
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} exceeds the {len(train_images)} training images: "
            f"give --train.batch_size {len(train_images)} (or fewer), or more images"
        )
    eval_images = load_images(config.data, config.data.eval_split, limit=config.train.eval_images).to(device)
    fine_images = None
    if config.train.fine_points:
        fine_data = dataclasses.replace(config.data, image_size=2 * config.data.image_size)
        fine_images = load_images(fine_data, "train", limit=limit).to(device)
    return TrainingImages(train_images, fine_images, eval_images)


def train(
    run: RunFolder,
    config: RunConfig,
    model: HyperSiren,
    optimizer: torch.optim.Optimizer,
    step: int,
    images: TrainingImages,
    writer: SummaryWriter | None,
    progress: tqdm,
    stop: StopSignals,
) -> None:
    """Train from ``step`` to ``train.max_steps``, logging, checkpointing and showing held-out images on the way.

    Between those steps the loop never waits on the device (``training``): a non-finite step is skipped
    there and reported at the next step that reads from the device anyway, before anything is logged or saved.
    A ``stop`` signal ends the loop after the step under way, which is saved; then KeyboardInterrupt, as Ctrl-C.
    """
    distributed = dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = images.train.device
    watch = FiniteWatch(device)
    trainable = DistributedDataParallel(model) if distributed else model
    take_gradients = gradient_step(trainable, optimizer, config.train, watch)  # compiled under train.compile
    batches = ShuffledBatches(len(images.train), config.train.batch_size, seed=config.train.seed, device=device)
    shard = slice(rank * (config.train.batch_size // world), (rank + 1) * (config.train.batch_size // world))
    throughput = Throughput(config.train.batch_size, step)
    while step < config.train.max_steps and stop.received is None:
        batch = recipe_batch(config.train, images.train, batches, step, fine_images=images.fine, shard=shard)
        for group in optimizer.param_groups:  # a function of the step, so a resumed run continues the schedule
            group["lr"] = learning_rate(config.train, step)
        loss, terms, grad_norm = take_gradients(batch, step)  # under DDP the global batch's loss and terms
        if run.sound_step == step:  # a checkpoint is due: its weights must have given a finite loss
            stop_if_diverged(run, watch, config, progress)
            run.keep_sound(step, model, optimizer, config)
        optimizer.step()
        step += 1
        progress.update()
        logged = step % config.train.log_every == 0
        imaged = step % config.train.image_every == 0 or step == config.train.max_steps
        if logged or imaged:  # the steps that read from the device anyway; every process, so all stop together
            stop_if_diverged(run, watch, config, progress)
        if run.write and logged:
            scalars = {"loss": loss.item(), "grad_norm": grad_norm.item()}
            scalars |= {name: value.item() for name, value in terms.items()}
            scalars |= {"lr": optimizer.param_groups[0]["lr"], "images_per_second": throughput.images_per_second(step)}
            log(run, writer, progress, step, scalars)
        if run.write and imaged:
            log_held_out(model, images.eval, writer, step)
        run.stepped(step, model, optimizer, config)
    if stop.received is not None and step < config.train.max_steps:
        stop_if_diverged(run, watch, config, progress)  # weights that just gave a non-finite loss are not saved
        run.stopped(step, model, optimizer, config)
        raise KeyboardInterrupt


class Throughput:
    """Training images per second between two log steps: the whole loop's rate (batches, logs, checkpoints,
    held-out images), measured where the loop has just read from the device, so the time is the device's too."""

    def __init__(self, batch_size: int, step: int):
        self.batch_size, self.step, self.time = batch_size, step, time.perf_counter()

    def images_per_second(self, step: int) -> float:
        now = time.perf_counter()
        rate = self.batch_size * (step - self.step) / max(now - self.time, 1e-9)
        self.step, self.time = step, now
        return rate


def stop_if_diverged(run: RunFolder, watch: FiniteWatch, config: RunConfig, progress: tqdm) -> None:
    """End the run with ``divergence_message`` if any step so far gave a non-finite loss or gradient (one sync)."""
    failure = watch.first_failure()
    if failure is not None:
        step, loss, grad_norm = failure
        progress.close()  # so that the message is the last line on the terminal
        print(run.divergence_message(loss, grad_norm, step, config), file=sys.stderr)
        raise SystemExit(EXIT_CODE)


def log(run: RunFolder, writer: SummaryWriter, progress: tqdm, step: int, scalars: dict[str, float]) -> None:
    """``scalars`` of ``step`` to the history, TensorBoard and the progress bar.

    The bar shows the batch's PSNR, a number to read beside the held-out tables: that of its rendered
    points' MSE (observed ones included) on [0, 1], where model space's [-1, 1] makes the MSE 4x larger. The
    loss itself is negative under ``train.loss = "log_mse"`` (a log of MSEs below 1): see the README.
    """
    progress.set_postfix(psnr=f"{10 * math.log10(4 / max(scalars['image_mse'], 1e-10)):.2f} dB")
    for name, value in scalars.items():
        writer.add_scalar(f"train/{name}", value, step)
    run.log(step, scalars)


def require_training_memory(config: RunConfig, device: torch.device, processes: int) -> None:
    """Refuse a training whose step would not fit in ``device``'s memory (``memory.training_bytes``, a rough and
    high estimate), before anything is written or decoded; each of ``processes`` takes its share of the batch."""
    if config.train.batch_size % processes:
        raise ConfigError(f"train.batch_size={config.train.batch_size} must be divisible by the {processes} processes")
    require_step_memory(
        config,
        batch_size=config.train.batch_size // processes,
        device=device,
        fix="lower train.batch_size, data.image_size, train.query_points, train.fine_points or the model's widths",
    )


@torch.no_grad()
def log_held_out(model: HyperSiren, images: torch.Tensor, writer: SummaryWriter, step: int) -> None:
    """Held-out PSNR at 10% of the pixels (100 at 32x32) and a context | prediction |
    truth grid, its tiles enlarged (nearest, so pixels stay pixels) to at least ``TENSORBOARD_TILE`` px:
    TensorBoard shows 32x32 at 32 px."""
    model.eval()
    image = model_space(images)
    setting = protocol_settings(images.shape[2:])[1]  # 10%: 100 pixels at 32x32
    mask = seeded_masks(setting, len(images), images.shape[2:], seed=0).to(images.device)
    prediction, truth = to_unit_range(model.inpaint(image, mask)), to_unit_range(image)
    writer.add_scalar(f"held_out/psnr_{setting}_context", psnr(prediction, truth).mean().item(), step)
    if image.dim() == 3:  # series: a plot of truth, observed samples and prediction
        figure = series_figure(truth[:4], mask[:4], {"HyperSiren": prediction[:4]})
        writer.add_figure("held_out/context_prediction_truth", figure, step)
    else:
        grid = comparison_grid(truth[:8], mask[:8], prediction[:8])  # (C, H', W'): a row of 3 tiles per image
        scale = math.ceil(TENSORBOARD_TILE / min(images.shape[-2:]))
        tiles = F.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
        writer.add_image("held_out/context_prediction_truth", tiles, step)
    model.train()


def end_summary(
    model: HyperSiren, eval_images: torch.Tensor, train_images: torch.Tensor, run_dir: Path, config: RunConfig
) -> str:
    """The last lines of a training: how it inpaints held-out images beside the best classical fill and the best
    data-driven prior of the training split (the bars it must clear, so the run ends with an answer rather than a
    loss), where its files are, and what to run next.

    ``eval_images``: uint8 ``(N, C, H, W)`` or float series ``(N, 1, T)``; the masks are eval/evaluate.py's (seed 0).
    """
    model.eval()
    settings = protocol_settings(eval_images.shape[2:])[:-1]  # "full" has nothing to fill
    priors = fit_data_priors(train_images.cpu(), settings).to(eval_images.device)
    results = evaluate_inpainting(model, eval_images, mean_image=None, settings=settings, progress=True, priors=priors)
    ours = {"PSNR (dB)": METHODS["hypersiren_pasted"]}
    classical, data_driven = {"PSNR (dB)": "best classical fill"}, {"PSNR (dB)": "best data-driven prior"}
    for setting, scores in results.items():  # scores: {method: {"psnr": mean dB, ...}}
        ours[setting] = f"{scores['hypersiren_pasted']['psnr']:.2f}"
        for row, methods in ((classical, CLASSICAL_FILLS[eval_images.dim() - 2]), (data_driven, priors.METHODS)):
            best = max(methods, key=lambda method: scores[method]["psnr"])
            row[setting] = f"{scores[best]['psnr']:.2f} ({best})"
    run = str(run_dir)
    return "\n".join(
        [
            f"\nHeld-out inpainting of {len(eval_images)} {config.data.eval_split} "
            f"{'images' if config.model.dims == 2 else 'series'} (eval/evaluate.py's masks):",
            markdown_table([ours, data_driven, classical]),
            f"\ncheckpoint: {run_dir / 'checkpoint.pt'} (step {config.train.max_steps})",
            f"TensorBoard: tensorboard --logdir {shlex.quote(str(run_dir / 'tensorboard'))}",
            "next:",
            f"  {program_command('eval/evaluate.py', '--run', run)}    # the full held-out table and plots",
            *(
                [
                    f"  {program_command('eval/inpaint.py', '--run', run)}     # figures",
                    f"  {program_command('eval/inpaint.py', '--run', run, '--image', 'YOUR_PHOTO.jpg')}",
                ]
                if config.model.dims == 2
                else []
            ),
        ]
    )


if __name__ == "__main__":
    main()

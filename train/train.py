"""Train encoder + hypernetwork on an image dataset.

    python train/train.py --config train/default.toml --out runs/celeba32
    python train/train.py --config train/paper.toml --data-root ~/data/celeba --out runs/paper train.lr=1e-4
    torchrun --nproc-per-node 2 train/train.py --config train/default.toml --out runs/ddp

Rerunning with the same --out resumes from its last checkpoint.
"""

import argparse
import dataclasses
import json
import math
import os
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from einops import rearrange
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from hypersiren.checkpoint import load_checkpoint, save_checkpoint
from hypersiren.config import RunConfig, TrainConfig
from hypersiren.data import (
    ShuffledBatches,
    fine_grid_points,
    load_images,
    to_model_space,
    to_unit_range,
    training_batch,
)
from hypersiren.evaluation import seeded_masks
from hypersiren.figures import comparison_grid
from hypersiren.functional import pixel_grid
from hypersiren.losses import hypernetwork_loss
from hypersiren.metrics import psnr
from hypersiren.model import HyperSiren

PRESETS = Path(__file__).parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(PRESETS / "default.toml"), help="TOML preset (ignored when resuming)")
    parser.add_argument("--out", required=True, help="run directory: config, checkpoint, TensorBoard logs")
    parser.add_argument("--data-root", help="dataset folder (overrides data.root)")
    parser.add_argument("--max-steps", type=int, help="overrides train.max_steps; raise it to continue a finished run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="section.field=value, e.g. train.lr=1e-4 model.latent_dim=128")
    return parser.parse_intermixed_args()


def main() -> None:
    args = parse_args()
    run_dir = Path(args.out)
    checkpoint_path = run_dir / "checkpoint.pt"
    resuming = checkpoint_path.is_file()
    config = RunConfig.load(run_dir / "config.json" if resuming else args.config).override(args.overrides)
    if args.data_root:
        config.data.root = args.data_root
    if args.max_steps is not None:
        config.train.max_steps = args.max_steps

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if args.device == "cuda" else args.device)
    if config.train.batch_size % world:
        raise SystemExit(f"train.batch_size={config.train.batch_size} must be divisible by the {world} processes")
    is_main = rank == 0

    train_images = load_images(config.data, "train", limit=config.data.train_limit or None).to(device)  # uint8 (N, 3, S, S), decoded once
    eval_images = load_images(config.data, config.data.eval_split, limit=config.train.eval_images).to(device)
    if config.train.fine_points:  # the same training images at twice the resolution
        fine_data = dataclasses.replace(config.data, image_size=2 * config.data.image_size)
        fine_images = load_images(fine_data, "train", limit=config.data.train_limit or None).to(device)
    size = config.data.image_size
    torch.manual_seed(config.train.seed)
    model = HyperSiren(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)
    step = 0
    if resuming:
        state = load_checkpoint(checkpoint_path, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
    trainable = DistributedDataParallel(model) if distributed else model
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
        writer = SummaryWriter(run_dir / "tensorboard")
        history = run_dir / "history.jsonl"  # one line per logged step; a resumed run rewrites its tail
        kept = [line for line in history.read_text().splitlines() if json.loads(line)["step"] <= step] if resuming else []
        history.write_text("".join(line + "\n" for line in kept))

    batches = ShuffledBatches(len(train_images), config.train.batch_size, config.train.seed)
    coords = pixel_grid(size, size, device).expand(config.train.batch_size // world, -1, -1)
    autocast = torch.autocast("cuda", torch.bfloat16) if config.train.amp and device.type == "cuda" else nullcontext()
    shard = slice(rank * (config.train.batch_size // world), (rank + 1) * (config.train.batch_size // world))

    progress = tqdm(total=config.train.max_steps, initial=step, desc="training", disable=not is_main, unit="step")
    while step < config.train.max_steps:
        images, masks = training_batch(
            train_images,
            batches,
            step,
            config.train.min_context,
            config.train.max_context,
            log_uniform=config.train.log_uniform_context,
            top_half_fraction=config.train.top_half_fraction,
        )
        for group in optimizer.param_groups:  # a function of the step, so a resumed run continues the schedule
            group["lr"] = learning_rate(config.train, step)
        image, mask = images[shard], masks[shard]  # (b, 3, S, S) in [-1, 1], (b, 1, S, S): this process's share
        points, target, observed = coords, rearrange(image, "b c h w -> b (h w) c"), rearrange(mask, "b 1 h w -> b (h w)")
        if config.train.fine_points:
            fine = to_model_space(fine_images[batches.indices(step)][shard])
            generator = torch.Generator().manual_seed(config.train.seed * 7_919 + step)
            fine_coords, fine_target = fine_grid_points(fine, config.train.fine_points, generator)
            points, target = torch.cat([points, fine_coords], dim=1), torch.cat([target, fine_target], dim=1)
            observed = torch.cat([observed, torch.zeros_like(fine_target[..., 0], dtype=torch.bool)], dim=1)  # never given
        with autocast:
            prediction = trainable(image, mask, points)
        loss, terms = hypernetwork_loss(
            prediction,
            target,
            latent_weight=config.train.latent_weight,
            weight_weight=config.train.weight_weight,
            observed=observed if config.train.loss == "log_mse" else None,
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
            raise SystemExit(
                f"non-finite loss {loss.item()} / gradient norm {grad_norm.item()} at step {step + 1}; "
                f"parameters were not updated and the last good checkpoint ({checkpoint_path}) is intact. "
                "Lower train.lr or train.grad_clip and rerun the same command to resume from it."
            )
        optimizer.step()
        step += 1
        progress.update()

        if is_main and step % config.train.log_every == 0:
            scalars = {"loss": loss.item(), "grad_norm": grad_norm.item(), **{k: v.item() for k, v in terms.items()}}
            progress.set_postfix(loss=f"{scalars['loss']:.4f}")
            for name, value in scalars.items():
                writer.add_scalar(f"train/{name}", value, step)
            with history.open("a") as file:
                file.write(json.dumps({"step": step, **scalars}) + "\n")
        if is_main and (step % config.train.image_every == 0 or step == config.train.max_steps):
            log_held_out(model, eval_images, writer, step)
        if step % config.train.checkpoint_every == 0 or step == config.train.max_steps:
            if is_main:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
                save_checkpoint(state | {"config": config.to_dict()}, checkpoint_path)
    progress.close()
    if is_main:
        writer.close()
    if distributed:
        dist.destroy_process_group()


def learning_rate(train: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based) under ``train.lr_schedule``."""
    if train.lr_schedule == "cosine":
        return train.lr * 0.5 * (1.0 + math.cos(math.pi * step / train.max_steps))
    return train.lr


@torch.no_grad()
def log_held_out(model: HyperSiren, images: torch.Tensor, writer: SummaryWriter, step: int) -> None:
    """Held-out PSNR at 100 context pixels and a context | prediction | truth grid."""
    model.eval()
    image = to_model_space(images)
    mask = seeded_masks("100", len(images), *images.shape[-2:], seed=0).to(images.device)
    prediction, truth = to_unit_range(model.inpaint(image, mask)), to_unit_range(image)
    writer.add_scalar("held_out/psnr_100_context", psnr(prediction, truth).mean().item(), step)
    writer.add_image("held_out/context_prediction_truth", comparison_grid(truth[:8], mask[:8], prediction[:8]), step)
    model.train()


if __name__ == "__main__":
    main()

"""The device check: one command on a GPU machine that measures the training step and trains the GPU presets.

    python datasets/pack.py                   # where ../shared is: CelebA packed into datasets/packed (10.4 MiB)
    python eval/gpu_check.py --quick          # on the GPU: one call sized for 9 minutes (see below)
    python eval/gpu_check.py --presets        # the full check, for users with time: the bench rows only
    python eval/gpu_check.py --skip-bench     # train/gpu/celeba32 and celeba64, trained and scored
    python eval/gpu_check.py --skip-bench --presets celeba128

``--quick`` runs five parts, each stopped where its share of ``--budget-s`` (420 s) ends, what a part leaves
unused going to the next; a part that runs out stops cleanly and says so under its rows, and the report is written
after every part, so a call killed on the way keeps the parts it finished:
1. sync: train.py's step of train/gpu/celeba32 and celeba64 at their batch (256), compile and amp as they set
   them, under ``torch.cuda.set_sync_debug_mode("error")`` over four steps across two epoch boundaries (CUDA only:
   skipped on the CPU, saying so);
2. loop: each of the two run by train/train.py until it has logged five intervals: the real loop's images/s;
3. bench: celeba32's training step (the default model at batch 256) eager, bf16 and compiled;
4. train: train/gpu/celeba32 (``--presets``) trained into ``--out`` by train.py, stopped as a scheduler stops it
   (SIGTERM: the step under way is saved) where its share ends; the next call resumes it;
5. score: the run exported (``export_run``, train/export.py's: weights only, 8 MiB) and scored on the device beside
   pretrained/celeba32 on the same masks; the classical fills' scores come from ``--fills``, computed on the CPU
   once per image set (eval/results/classical_fills.json holds those of the packed copy's first 256 val images).

Without --quick it does all of the full check but celeba128 in one call (20-30 minutes on one H100 or H200). In
order:
1. Bench rows (``eval/bench.py``'s ``bench_modes``): the training step of the default, celeba64 and
   paper presets at batch 32 and at the GPU batch, eager / compiled / bf16, as images/s and as a
   share of this device's measured fp32 GEMM rate; then each speed trick of the default step switched
   off in turn (``bench_training``), so a trick that does not pay on the GPU shows it.
2. Each GPU preset (``train/gpu/*.toml``) trained by ``train/train.py`` on the packed copy (resumed
   if its run folder exists), its real-loop rate read from the run's history, and exported.
3. Its held-out table: the GPU model, the CPU preset's pretrained model (``pretrained/celeba32``,
   ``pretrained/celeba64``), both on the device, and the best classical fill, pasted, on the same masks of the
   packed val images, then the differences.
Each call prints its Markdown and adds it, with every number, to ``eval/results/bench_<device>.json``, which keeps
every call's Markdown (``calls``), so split calls make one report.

It needs only the repository and ``datasets/packed``: no ``../shared``, no network. A copy to send to a device
machine, without the pretrained runs the check does not use (39.3 MiB with the pack, measured as the tar file):

    git archive -o hypersiren.tar HEAD -- . ':!pretrained/cifar10*' ':!pretrained/osuleaf*' \\
        ':!pretrained/celeba32_prior' ':!pretrained/*_pixel/*'
    tar -rf hypersiren.tar datasets/packed
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse
from pathlib import Path

from hypersiren.cli import exits_cleanly, int_in, parse_before_imports, positive_float, program

REPO = Path(__file__).resolve().parents[1]
GPU_PRESETS = {name: REPO / "train" / "gpu" / f"{name}.toml" for name in ("celeba32", "celeba64", "celeba128")}
PACKED = REPO / "datasets" / "packed" / "celeba128"
FILLS = REPO / "eval" / "results" / "classical_fills.json"
# --quick: its budget and each part's share of what is left when the part starts (estimates, not yet measured on a
# GPU: a cold compile about a minute, a warm one, from inductor's cache, about 20 s; celeba32's 8,000 steps 80 s
# at the 25,000 images/s goal). 420 s, with start-up and a training's stop, ends within a 9-minute call.
QUICK_BUDGET_S = 420.0
QUICK_SHARES = {"sync": 3, "loop": 2, "bench": 2, "train": 5, "score": 1}


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    parser.add_argument(
        "--presets",
        nargs="*",
        choices=sorted(GPU_PRESETS),
        default=None,
        help="GPU presets to train and score (none: the bench rows only; default celeba32 and celeba64, "
        "celeba32 with --quick)",
    )
    parser.add_argument("--data-root", default=str(PACKED), help="CelebA layout to train and score on")
    parser.add_argument("--out", default=str(REPO / "runs" / "gpu_check"), help="folder of the GPU presets' runs")
    parser.add_argument("--skip-bench", action="store_true", help="train and score only")
    parser.add_argument("--rounds", type=int_in(1), default=5, help="interleaved bench rounds")
    parser.add_argument("--eval-images", type=int_in(1), default=None, help="val images scored (default per preset)")
    parser.add_argument("--train-option", action="append", default=[], help="an extra train.py option, e.g. KEY=VALUE")
    parser.add_argument("--json", default=None, help="the report (default eval/results/bench_<device type>.json)")
    parser.add_argument("--quick", action="store_true", help="the five parts on a time budget (--budget-s)")
    parser.add_argument(
        "--budget-s", type=positive_float, default=None, help=f"--quick's seconds for its parts ({QUICK_BUDGET_S:.0f})"
    )
    parser.add_argument(
        "--batch-size", type=int_in(1), default=None, help="--quick's sync and bench batch (default: the presets')"
    )
    parser.add_argument("--fills", default=str(FILLS), help="the classical fills' scores, cached per image set")
    args = parser.parse_args()
    given = [option for option in ("budget_s", "batch_size") if getattr(args, option) is not None]
    if given and not args.quick:
        parser.error(f"--{given[0].replace('_', '-')} applies to --quick: add --quick, or leave it out")
    if args.quick and args.skip_bench:
        parser.error("--skip-bench applies to the full check: --quick times its bench part on its budget; leave it out")
    if args.presets is None:
        args.presets = ["celeba32"] if args.quick else ["celeba32", "celeba64"]
    args.budget_s = args.budget_s or QUICK_BUDGET_S
    return args


parse_before_imports(parse_args, __name__)

import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import Tensor

from hypersiren.across.baseline_fill import CLASSICAL_FILLS, classical_fill
from hypersiren.across.checkpoint import export_run, load_checkpoint, load_run
from hypersiren.across.config import RunConfig
from hypersiren.across.context import protocol_settings
from hypersiren.across.data import load_images
from hypersiren.across.evaluation import mean_psnrs
from hypersiren.across.model import HyperSiren
from hypersiren.across.training import set_tf32
from hypersiren.results import earlier_result, markdown_table, write_json

sys.path.insert(0, str(REPO / "eval"))
import bench  # a program beside this one, not a package

EVAL_IMAGES = {"celeba32": 256, "celeba64": 256, "celeba128": 64}  # biharmonic at 128x128 takes ~0.25 s an image
GPU_BATCH = 256
# Compiling takes about a minute a contender: compiled rows at the GPU batch only.
BENCH_MODES = {
    32: ("eager, fp32",),
    GPU_BATCH: ("eager, fp32", "eager, bf16 autocast", "eager, TF32", "compiled, fp32", "compiled, bf16 autocast"),
}
LOOP_PRESETS = ("celeba32", "celeba64")  # the default model and celeba64, on the GPU recipe
LOOP_LOGS = 5  # intervals a loop measure waits for; the first (start-up, compilation) is not counted
# bench.preset_step holds two batches of images: steps 2-5 draw the permutations of epochs 1 and 2, after two
# unwatched steps that compile (which may wait on the device).
SYNC_WARMUP, SYNC_STEPS = 2, 4
QUICK_BENCH_MODES = ("eager, fp32", "eager, bf16 autocast", "compiled, fp32")
STOP_GRACE_S = 30  # a stopped training ends its step and saves; one stuck longer is killed, its checkpoint kept


@exits_cleanly()
def main() -> None:
    args = parse_args()
    if not Path(args.data_root).is_dir():
        raise FileNotFoundError(f"no packed data at {args.data_root}: run python datasets/pack.py where ../shared is")
    set_tf32(False)  # fp32 means fp32 in the GEMM rate and in every eager fp32 row
    path = Path(args.json or REPO / "eval" / "results" / f"bench_{args.device.split(':')[0]}.json")
    report = Report(path, args.device)
    size = 4096 if "cuda" in args.device else 1024
    rate = bench.gemm_flops_per_second(args.device, size)
    budget = f", --quick on {args.budget_s:.0f} s" if args.quick else ""
    report.add(
        f"# GPU check: {report.values['device']}, torch {torch.__version__}{budget}\n\n"
        f"fp32 GEMM: {rate / 1e12:.3g} TFLOP/s (measured, {size}x{size} matrices)",
        gemm_flops_per_second=rate,
    )
    (quick_check if args.quick else full_check)(args, report, rate)


class Report:
    """The device's JSON report: this call's sections added to what earlier calls on the same device measured, written
    after every section, so that a call killed on the way keeps what it finished; ``calls`` keeps each call's Markdown
    (a split check is one report), the top-level values are the latest measured."""

    def __init__(self, path: Path, device: str):
        self.path, self.sections = path, []
        self.values: dict[str, Any] = {"device": bench.device_name(device), "torch": torch.__version__, "presets": {}}
        earlier = earlier_result(path, "presets", what="a report of eval/gpu_check.py", option="--json") or {}
        if earlier.get("device") == self.values["device"]:  # another part of the same check
            self.values = earlier | self.values | {"presets": earlier["presets"]}
        self.values.setdefault("calls", []).append({"options": sys.argv[1:], "markdown": ""})

    def add(self, section: str, **values: Any) -> None:
        """Print ``section`` and write the report with it and ``values`` (top-level entries) now."""
        print(f"{section}\n", flush=True)
        self.sections.append(section)
        self.values |= values
        self.values["calls"][-1]["markdown"] = "\n\n".join(self.sections)
        write_json(self.values, self.path)


def full_check(args: argparse.Namespace, report: Report, gemm_rate: float) -> None:
    """The bench rows and tricks (unless --skip-bench), then each of --presets trained to its end, exported and
    scored: about 20-30 minutes on one H100 or H200."""
    if not args.skip_bench:
        rows = bench_rows(args.device, args.rounds, gemm_rate)
        report.add(f"## Training step\n\n{bench.mode_table(rows)}", bench=rows)
        tricks = trick_rows(args.device, args.rounds)
        table = bench.markdown_table(bench.formatted(tricks))
        report.add(f"## Each speed trick, default preset, batch {GPU_BATCH}\n\n{table}", tricks=tricks)
        torch.cuda.empty_cache()  # what the rows cached on the GPU is the trainings' (subprocesses) now
    for name in args.presets:
        run = Path(args.out) / name
        since, started = len(interval_rates(run)), time.perf_counter()
        train(GPU_PRESETS[name], run, args.data_root, args.device, args.train_option)
        result = report.values["presets"][name] = {}
        score_run(result, name, run, args, gemm_rate, since=since, wall_seconds=time.perf_counter() - started)
        report.add(preset_section(name, result))


def quick_check(args: argparse.Namespace, report: Report, gemm_rate: float) -> None:
    """The five --quick parts in order, each on its share (``QUICK_SHARES``) of what is left of ``--budget-s``, each
    reported as it ends, stopped or not."""
    entries: dict[str, dict[str, Any]] = {name: {} for name in QUICK_SHARES}
    parts = {
        "sync": (partial(sync_part, device=args.device, batch_size=args.batch_size), sync_section),
        "loop": (partial(loop_part, args=args, gemm_rate=gemm_rate), loop_section),
        "bench": (partial(bench_part, args=args, gemm_rate=gemm_rate), bench_section),
        "train": (partial(train_part, args=args), train_section),
        "score": (
            partial(score_part, args=args, gemm_rate=gemm_rate, trained=entries["train"], results=report.values),
            partial(score_section, presets=args.presets, results=report.values),
        ),
    }
    end = time.perf_counter() + args.budget_s
    for index, (name, (measure, section)) in enumerate(parts.items()):
        shares = list(QUICK_SHARES.values())[index:]
        run_part(measure, entries[name], seconds=(end - time.perf_counter()) * shares[0] / sum(shares))
        torch.cuda.empty_cache()  # what an in-process part cached on the GPU is the trainings' (subprocesses) now
        report.values.setdefault("quick", {})[name] = entries[name]
        report.add(section(entries[name]) + stop_note(entries[name]))


class BudgetSpent(BaseException):
    """A part's share of --budget-s has run out. Raised by SIGALRM wherever the part is: a BaseException, as
    KeyboardInterrupt, so that no ``except Exception`` on its way (torch.compile has some) takes it for its own."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``BudgetSpent`` in the block once ``seconds`` have passed (a POSIX timer: Linux and macOS)."""

    def spent(number: int, frame: object) -> None:
        raise BudgetSpent

    previous = signal.signal(signal.SIGALRM, spent)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))  # 0 would disarm it: a spent budget stops at once
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_part(measure: Callable[[dict[str, Any]], None], entry: dict[str, Any], seconds: float) -> None:
    """``measure(entry)``, which fills ``entry`` as it measures, stopped after ``seconds``: what it measured by then
    stays, ``stopped`` says why the rest is missing, ``seconds`` how long it took."""
    started, entry["budget_s"] = time.perf_counter(), seconds
    try:
        with deadline(seconds):
            measure(entry)
    except BudgetSpent:
        entry["stopped"] = f"its budget of {seconds:.0f} s ran out"
    entry["seconds"] = time.perf_counter() - started


def stop_note(entry: dict[str, Any]) -> str:
    """The line under a part's section that says it was stopped, and that what is above is all it measured."""
    return f"\n\nStopped: {entry['stopped']}; the rows above are what it measured." if "stopped" in entry else ""


def sync_part(entry: dict[str, Any], device: str, batch_size: int | None) -> None:
    """``sync_check`` of each of ``LOOP_PRESETS`` at its own batch (or ``batch_size``); CUDA only."""
    if not device.startswith("cuda"):
        entry["skipped"] = f"torch.cuda.set_sync_debug_mode watches CUDA only, and this is {device}: run it on a GPU"
        return
    for name in LOOP_PRESETS:
        config = RunConfig.load(GPU_PRESETS[name])
        entry[name] = sync_check(config, device, batch_size or config.train.batch_size)


def sync_check(config: RunConfig, device: str, batch_size: int) -> dict[str, Any]:
    """Whether train.py's step of ``config`` (``bench.preset_step``: its compile and amp) makes the host wait on the
    device: steps 2-5, which cross two epoch boundaries, under ``torch.cuda.set_sync_debug_mode("error")``, which
    raises at the first synchronizing operation; the step it happened at and the error's first line, if one did."""
    torch._dynamo.reset()  # each preset compiled afresh, with static shapes, as train.py compiles it
    _, step = bench.preset_step(config, device, batch_size)
    for _ in range(SYNC_WARMUP):
        step()
    result: dict[str, Any] = {"batch": batch_size, "steps": f"{SYNC_WARMUP}-{SYNC_WARMUP + SYNC_STEPS - 1}"}
    torch.cuda.set_sync_debug_mode("error")
    try:
        for index in range(SYNC_WARMUP, SYNC_WARMUP + SYNC_STEPS):
            try:
                step()
            except RuntimeError as error:
                return result | {"synced_at_step": index, "error": str(error).strip().splitlines()[0]}
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return result | {"synced_at_step": None}


def sync_section(entry: dict[str, Any]) -> str:
    title = '## Sync check: train.py\'s step under torch.cuda.set_sync_debug_mode("error")'
    if "skipped" in entry:
        return f"{title}\n\nSkipped: {entry['skipped']}."
    rows = []
    for name in LOOP_PRESETS:
        result = entry.get(name, {"batch": None, "steps": None})
        if "synced_at_step" not in result:
            outcome = "not reached"
        elif result["synced_at_step"] is None:
            outcome = "no sync"
        else:
            outcome = f"step {result['synced_at_step']}: {result['error']}"
        watched = {"batch": result["batch"], "steps watched": result["steps"]}
        rows.append({"preset": f"train/gpu/{name}"} | watched | {"result": outcome})
    return f"{title}\n\n{markdown_table(rows)}"


def loop_part(entry: dict[str, Any], args: argparse.Namespace, gemm_rate: float) -> None:
    """Each of ``LOOP_PRESETS`` trained by train.py in a folder of its own until it has logged ``LOOP_LOGS``
    intervals: the rate of the real loop, not of the bench's step. What a stopped one logged counts."""
    for name in LOOP_PRESETS:
        with tempfile.TemporaryDirectory(prefix=f"gpu_check_{name}_") as folder:
            run = Path(folder) / "run"
            try:
                train(GPU_PRESETS[name], run, args.data_root, args.device, args.train_option, logs=LOOP_LOGS)
            finally:
                rates = interval_rates(run)
                if rates:
                    entry[name] = loop_rate(RunConfig.load(run / "config.json"), rates, args.device, gemm_rate)


def loop_section(entry: dict[str, Any]) -> str:
    rows = [
        {"preset": f"train/gpu/{name}"}
        | (
            {
                "images/s": f"{entry[name]['images_per_second']:,.0f}",
                "% of fp32 GEMM": f"{entry[name]['gemm_percent']:.1f}%",
                "intervals": entry[name]["intervals"],
            }
            if name in entry
            else {"images/s": "no interval logged", "% of fp32 GEMM": None, "intervals": 0}
        )
        for name in LOOP_PRESETS
    ]
    return f"## The training loop (train/train.py), its first interval left out\n\n{markdown_table(rows)}"


def bench_part(entry: dict[str, Any], args: argparse.Namespace, gemm_rate: float) -> None:
    """``bench.bench_modes`` of train/gpu/celeba32 (the default model, the GPU recipe) in ``QUICK_BENCH_MODES``."""
    config = RunConfig.load(GPU_PRESETS["celeba32"])
    modes = QUICK_BENCH_MODES if args.device.startswith("cuda") else bench.CPU_MODES[:1]  # compiling: minutes on CPU
    torch._dynamo.reset()  # compiled with static shapes, as train.py compiles it, not after the sync check's shapes
    batch_size = args.batch_size or config.train.batch_size
    entry["rows"] = bench.bench_modes(
        {"celeba32": config}, args.device, batch_size=batch_size, rounds=args.rounds, gemm_rate=gemm_rate, modes=modes
    )


def bench_section(entry: dict[str, Any]) -> str:
    table = bench.mode_table(entry["rows"]) if "rows" in entry else "Not measured."
    return f"## Training step, train/gpu/celeba32 (the default model)\n\n{table}"


def train_part(entry: dict[str, Any], args: argparse.Namespace) -> None:
    """Each of --presets trained into ``--out`` by train.py (resumed where an earlier call stopped it) until its end or
    this part's budget's, when it is stopped as a scheduler stops a run: the step under way is saved."""
    for name in args.presets:
        run = Path(args.out) / name
        entry[name] = {"run": str(run), "intervals_before": len(interval_rates(run)), "stopped": True}
        started = time.perf_counter()
        try:
            entry[name]["stopped"] = train(GPU_PRESETS[name], run, args.data_root, args.device, args.train_option)
        finally:
            entry[name]["wall_seconds"] = time.perf_counter() - started


def train_section(entry: dict[str, Any]) -> str:
    rows = []
    for name, row in entry.items():
        if isinstance(row, dict):  # a preset's, not the part's own values
            saved = (Path(row["run"]) / "checkpoint.pt").is_file()
            ended = "stopped, its step saved: the next call resumes it" if saved else "stopped before its first step"
            ended = ended if row["stopped"] else "at its last step"
            trained = f"train/gpu/{name} in {row['run']}"
            rows.append({"trained": trained, "minutes": f"{row['wall_seconds'] / 60:.1f}", "ended": ended})
    return "## Training\n\n" + (markdown_table(rows) if rows else "Nothing trained.")


def score_part(
    entry: dict[str, Any],
    args: argparse.Namespace,
    gemm_rate: float,
    trained: dict[str, Any],
    results: dict[str, Any],
) -> None:
    """Each trained preset of --presets exported and scored (``score_run``) into ``results["presets"]``."""
    for name in args.presets:
        run = Path(args.out) / name
        if not (run / "checkpoint.pt").is_file():
            entry[name] = f"no checkpoint in {run}: its training stopped before its first step"
            continue
        entry[name], result = "scoring", {}
        results["presets"][name] = result  # filled as it is measured: a stop keeps what is in it
        times = trained.get(name, {})
        score_run(result, name, run, args, gemm_rate, times.get("intervals_before", 0), times.get("wall_seconds"))
        entry[name] = "scored"


def score_section(entry: dict[str, Any], presets: list[str], results: dict[str, Any]) -> str:
    """Each of ``presets`` as this call scored it (``preset_section``), or why it did not."""
    sections = []
    for name in presets:
        result = results["presets"][name] if entry.get(name) in ("scoring", "scored") else {}
        if "steps" in result:
            sections.append(preset_section(name, result))
        else:
            reason = {"scoring": "stopped before its export", None: "not reached"}.get(entry.get(name), entry.get(name))
            sections.append(f"## {name}: not scored, {reason}")
    return "\n\n".join(sections)


def bench_rows(device: str, rounds: int, gemm_rate: float) -> list[dict[str, Any]]:
    """``bench.bench_modes`` of the default, celeba64 and paper presets at batch 32 and at ``GPU_BATCH``."""
    configs = {name: RunConfig.load(bench.PRESETS / f"{name}.toml") for name in ("default", "celeba64", "paper")}
    modes = BENCH_MODES if "cuda" in device else dict.fromkeys(BENCH_MODES, bench.CPU_MODES[:1])
    return [
        row
        for batch, batch_modes in modes.items()
        for row in bench.bench_modes(
            configs, device, batch_size=batch, rounds=rounds, gemm_rate=gemm_rate, modes=batch_modes
        )
    ]


def trick_rows(device: str, rounds: int) -> list[dict[str, Any]]:
    """``bench.bench_training``'s rows for the default model at ``GPU_BATCH``: eager, each trick switched off."""
    config = RunConfig.load(bench.PRESETS / "default.toml")
    torch.manual_seed(0)
    model = HyperSiren(config.model).to(device)
    batch = bench.make_batch(config.model, batch_size=GPU_BATCH, size=config.data.image_size, device=device)
    return bench.bench_training(model, batch, device=device, rounds=rounds, reference=None)


def train(preset: Path, run: Path, data_root: str, device: str, options: list[str], logs: int = 0) -> bool:
    """``train/train.py`` on ``preset`` into ``run`` (resumed where it stopped), its progress on this terminal, until it
    ends, or has logged ``logs`` intervals (0: no such stop), or a budget stops this check (``BudgetSpent``). A run
    stopped early gets SIGTERM, as from a scheduler: it ends the step under way and saves it (past
    ``STOP_GRACE_S`` it is killed, its last checkpoint kept). Returns whether it was stopped."""
    command = [sys.executable, str(REPO / "train" / "train.py"), "--config", str(preset), "--out", str(run)]
    command += ["--data.root", data_root, "--device", device, *(f"--{option}" for option in options)]
    process = subprocess.Popen(command, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        while process.poll() is None and not (logs and len(interval_rates(run)) >= logs):
            time.sleep(0.5)
    finally:
        stopped = process.poll() is None
        if stopped:
            stop(process)
    if not stopped and process.returncode != 0:  # train.py has said why, in one line: the check stops with its code
        print(
            f"error: training train/gpu/{preset.name} ended with exit {process.returncode}: see above", file=sys.stderr
        )
        raise SystemExit(process.returncode)
    return stopped


def stop(process: subprocess.Popen) -> None:
    """Stop a training as a scheduler does (SIGTERM: its step saved), killing it if it has not ended in
    ``STOP_GRACE_S``. A budget that runs out meanwhile stops this check once the training has ended, not before:
    no training outlives its part."""
    # The alarm is deferred by a handler of its own, not a signal mask: a mask holds one thread only, and torch's
    # threads would take the signal for the process.
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda number, frame: fired.append(number))
    try:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    finally:
        signal.signal(signal.SIGALRM, previous)
    if fired and callable(previous):
        previous(signal.SIGALRM, None)


def interval_rates(run: Path) -> list[float]:
    """The images/s of each log interval in ``run``'s history, in order (none for a run not yet started)."""
    history = run / "history.jsonl"
    entries = [json.loads(line) for line in history.read_text().splitlines()] if history.is_file() else []
    return [entry["images_per_second"] for entry in entries if "images_per_second" in entry]


def loop_rate(config: RunConfig, rates: list[float], device: str, gemm_rate: float) -> dict[str, float]:
    """The real loop's images/s over the intervals ``rates`` of a run of ``config`` but the first (which holds
    start-up and compilation): checkpoint and held-out image steps included, as ``steps x batch / seconds`` (the
    intervals' harmonic mean); the share of the fp32 GEMM rate that is, and the minutes the run's steps take so."""
    counted = rates[1:] or rates
    images_per_second = statistics.harmonic_mean(counted)
    flops = bench.preset_flops(config, device, batch_size=8) / 8
    return {
        "images_per_second": images_per_second,
        "gemm_percent": 100 * flops * images_per_second / gemm_rate,
        "minutes_of_steps": config.train.max_steps * config.train.batch_size / images_per_second / 60,
        "intervals": len(counted),
    }


def score_run(
    result: dict[str, Any],
    name: str,
    run: Path,
    args: argparse.Namespace,
    gemm_rate: float,
    since: int,
    wall_seconds: float | None,
) -> None:
    """Fill ``result`` with the trained ``run`` of preset ``name``, in order, so that a stop keeps what is done: its
    export (``<--out>/exported/<name>``, weights only) and step, its loop rate over the intervals logged from the
    ``since``-th on (all of them if it logged none since: a run an earlier call finished), its held-out table."""
    out = Path(args.out) / "exported" / name
    exported = export_run(run, out, data_root=in_repository(args.data_root), replace=True)
    config = RunConfig.load(run / "config.json")
    result |= {"wall_seconds": wall_seconds, "steps": load_checkpoint(exported)["step"]}
    result |= {"max_steps": config.train.max_steps, "export": str(out), "export_mib": exported.stat().st_size / 2**20}
    rates = interval_rates(run)
    if rates:
        result |= loop_rate(config, rates[since:] or rates, args.device, gemm_rate)
    count = args.eval_images or EVAL_IMAGES[name]
    result["held_out"] = held_out(name, exported.parent, args.data_root, count, args.device, Path(args.fills))


def in_repository(path: str) -> str:
    """``path`` relative to the repository where it is inside it, as presets name dataset roots, so that an export
    of a run on the packed copy finds it from any copy of the repository; any other path as it is."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else path


def held_out(
    name: str, run: Path, data_root: str, count: int, device: str, fills: Path
) -> dict[str, dict[str, float | str] | int]:
    """Pasted PSNR per setting of the GPU run, the CPU preset's pretrained run where there is one (both on
    ``device``: nothing waits on the CPU), and the best classical fill (``classical_psnrs``, cached in ``fills``), on
    the same seeded masks of the first ``count`` val images of ``data_root``."""
    config, model = load_run(run, device=device, data_root=data_root)
    images = load_images(config.data, "val", limit=count)
    settings = protocol_settings(images.shape[2:])[:-1]  # "full" has nothing to fill
    models = {"gpu": model}
    cpu_run = REPO / "pretrained" / name
    if (cpu_run / "checkpoint.pt").is_file():
        models["cpu_pretrained"] = load_run(cpu_run, device=device, data_root=data_root)[1]
    ours = mean_psnr_table({key: partial(pasted, model) for key, model in models.items()}, images, settings, device)
    classical = classical_psnrs(images, settings, fills)
    table: dict[str, dict[str, float | str] | int] = {}
    for setting in settings:
        fill = max(classical[setting], key=classical[setting].get)
        table[setting] = ours[setting] | {"classical": classical[setting][fill], "fill": fill}
    return table | {"images": len(images)}


def pasted(model: HyperSiren, image: Tensor, mask: Tensor) -> Tensor:
    """``model``'s completion with the observed pixels pasted: ``evaluate_inpainting``'s "hypersiren_pasted"."""
    return torch.where(mask, image, model.inpaint(image, mask, raw=True))


def mean_psnr_table(
    fills: dict[str, Callable[[Tensor, Tensor], Tensor]], images: Tensor, settings: tuple[str, ...], device: str
) -> dict[str, dict[str, float]]:
    """``{setting: {name: dB}}``: the mean PSNR of each of ``fills(image, mask)`` on ``images`` (uint8 ``(N, C, H,
    W)``), computed on ``device`` with ``evaluation.mean_psnrs``' seeded masks (seed 0), as every table's."""

    def predict(image: Tensor, mask: Tensor, rows: slice, setting: str) -> dict[str, tuple[Tensor, Tensor]]:
        return {name: (fill(image, mask), image) for name, fill in fills.items()}

    scored = mean_psnrs(images, settings, predict, device)
    return {setting: {name: scores["psnr"] for name, scores in rows.items()} for setting, rows in scored.items()}


def classical_psnrs(images: Tensor, settings: tuple[str, ...], cache: Path) -> dict[str, dict[str, float]]:
    """``mean_psnr_table`` of the classical fills (``CLASSICAL_FILLS``, scipy and scikit-image on the CPU: a quarter
    of a second an image at 32x32, over a second at 64x64): read from ``cache`` where it holds these images (by
    digest), else computed and added to it, so a device call does not spend its minutes on the CPU."""
    key = f"{'x'.join(map(str, images.shape))}-{hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]}"
    what = "a cache of eval/gpu_check.py's classical fills"
    saved = earlier_result(cache, "image_sets", what=what, option="--fills") or {"image_sets": {}}
    scores = saved["image_sets"].setdefault(key, {})
    missing = tuple(setting for setting in settings if setting not in scores)
    if missing:
        fills = {fill: partial(classical_fill, fill) for fill in CLASSICAL_FILLS[2]}
        scores |= mean_psnr_table(fills, images, missing, device="cpu")
        write_json(saved, cache)
    return {setting: scores[setting] for setting in settings}


def preset_section(name: str, result: dict[str, Any]) -> str:
    """A trained preset: its step, loop rate and export, and its held-out table beside the CPU preset's pretrained
    model and the best classical fill, with the differences."""
    header = f"## {name}: step {result['steps']:,} of {result['max_steps']:,}"
    if "images_per_second" in result:
        header += (
            f", {result['images_per_second']:,.0f} images/s in the training loop ({result['gemm_percent']:.1f}% of "
            f"the fp32 GEMM rate), {result['minutes_of_steps']:.1f} min of steps"
        )
    if result["wall_seconds"] is not None:
        header += f", {result['wall_seconds'] / 60:.1f} min in all"
    header += f"\n\nExported: {result['export']} ({result['export_mib']:.1f} MiB, weights only)."
    if "held_out" not in result:
        return f"{header}\n\nHeld-out: not scored."
    held = {setting: row for setting, row in result["held_out"].items() if isinstance(row, dict)}
    rows = [
        {"PSNR (dB), pasted": f"GPU preset (train/gpu/{name}.toml)"} | {s: f"{r['gpu']:.2f}" for s, r in held.items()}
    ]
    if all("cpu_pretrained" in row for row in held.values()):
        rows.append(
            {"PSNR (dB), pasted": f"CPU preset (pretrained/{name})"}
            | {s: f"{r['cpu_pretrained']:.2f}" for s, r in held.items()}
        )
        rows.append(
            {"PSNR (dB), pasted": "GPU − CPU"} | {s: f"{r['gpu'] - r['cpu_pretrained']:+.2f}" for s, r in held.items()}
        )
    rows.append(
        {"PSNR (dB), pasted": "best classical fill"}
        | {s: f"{r['classical']:.2f} ({r['fill']})" for s, r in held.items()}
    )
    rows.append(
        {"PSNR (dB), pasted": "GPU − best classical"}
        | {s: f"{r['gpu'] - r['classical']:+.2f}" for s, r in held.items()}
    )
    return (
        f"{header}\n\nHeld-out: the first {result['held_out']['images']} val images, the same masks for every row.\n\n"
        + markdown_table(rows)
    )


if __name__ == "__main__":
    main()

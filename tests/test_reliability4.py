"""Issue 34: a writer replaces only what it wrote, and each ordinary mistake is one line that names the fix."""

import json
import math
import os
import shlex
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
from conftest import fake_celeba
from PIL import Image

from hypersiren.across import images, series
from hypersiren.across.checkpoint import load_checkpoint, load_run, save_checkpoint
from hypersiren.across.config import FIELD_HELP, RunConfig
from hypersiren.across.model import HyperSiren
from hypersiren.cli import add_config_options, config_overrides, program
from hypersiren.errors import CheckpointError, ConfigError, DatasetError
from hypersiren.files import byte_size

REPO = Path(__file__).resolve().parents[1]


def run(program_path: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / program_path), *args]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, check=False)


def run_main(load_program, capsys, monkeypatch, program_path: str, *args: str) -> tuple[int, str, str]:
    """``program_path``'s main on ``args`` in this process: (exit code, stdout, stderr)."""
    module = load_program(program_path)
    monkeypatch.setattr(sys, "argv", [program_path, *args])
    code = 0
    try:
        module.main()
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, *phrases: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def files_under(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_pack_replaces_only_its_own_copy_and_never_the_root(tmp_path, load_program, capsys, monkeypatch):
    root = fake_celeba(tmp_path / "celeba")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("someone's")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "pack.json").write_text('{"size": 16}')  # a pack.json, but not one pack.py wrote
    before = files_under(tmp_path)
    for out, phrase in [
        (tmp_path / "mine", "holds no pack.json"),
        (tmp_path / "theirs", "holds a pack.json that datasets/pack.py did not write"),
        (root, "the --root"),
        (root / "img_align_celeba", "the --root"),
        (tmp_path, "the --root"),
        (tmp_path / "mine" / "notes.txt", "is a file, not a folder"),
    ]:
        args = ("--root", str(root), "--size", "8", "--out", str(out))
        code, _, err = run_main(load_program, capsys, monkeypatch, "datasets/pack.py", *args)
        one_line_error(code, err, str(out), phrase, "choose")
    assert files_under(tmp_path) == before
    packed = tmp_path / "packed"
    for _ in range(2):  # a new folder, then its own earlier copy
        args = ("--root", str(root), "--size", "8", "--out", str(packed))
        code, out, err = run_main(load_program, capsys, monkeypatch, "datasets/pack.py", *args)
        assert code == 0 and "12 images" in out, err
    assert json.loads((packed / "pack.json").read_text())["program"] == "datasets/pack.py"
    assert len(list((packed / "img_align_celeba").glob("*.webp"))) == 12


def test_a_fit_never_takes_over_a_folder_whose_config_json_it_did_not_write(
    tmp_path, load_program, capsys, monkeypatch
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"experiment": "my own"}')
    (out / "notes.txt").write_text("someone's")
    before = files_under(tmp_path)
    fit = ["--size", "8", "--hidden", "8", "--layers", "1", "--steps", "2", "--device", "cpu", "--out", str(out)]
    for program_path in ("train/fit_image.py", "train/fit_derivatives.py", "train/fit_sdf.py"):
        arguments = fit if program_path != "train/fit_sdf.py" else fit[2:]  # fit_sdf has no --size
        code, _, err = run_main(load_program, capsys, monkeypatch, program_path, *arguments)
        one_line_error(code, err, str(out), "holds a config.json that fit_", "did not write", "choose a new folder")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ('{"mine": 1}', "is not a report of eval/gpu_check.py"),
        ("[1, 2]", "is not a report of eval/gpu_check.py"),
        ("not json at all", "is not a report of eval/gpu_check.py"),
        ('{"device": "CPU (x)", "threads": 4}', "is not a report of eval/gpu_check.py"),  # bench.py's, not its own
    ],
)
def test_the_device_check_replaces_no_json_but_its_own_report(
    tmp_path, load_program, capsys, monkeypatch, content, phrase
):
    report = tmp_path / "report.json"
    report.write_text(content)
    args = ("--device", "cpu", "--skip-bench", "--presets", "--data-root", str(tmp_path), "--json", str(report))
    code, _, err = run_main(load_program, capsys, monkeypatch, "eval/gpu_check.py", *args)
    one_line_error(code, err, str(report), phrase, "pass --json elsewhere")
    assert report.read_text() == content


def test_a_preset_that_is_not_utf8_is_named(tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_bytes('[data]\nroot = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"bad.toml is not UTF-8 text .*save it as UTF-8"):
        RunConfig.load(preset)
    result = run("train/train.py", "--config", str(preset), "--out", str(tmp_path / "run"), "--device", "cpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "is not UTF-8" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_folder_named_checkpoint_pt_is_called_a_folder(tmp_path):
    (tmp_path / "checkpoint.pt").mkdir()
    with pytest.raises(CheckpointError, match=r"checkpoint.pt is a folder, not a checkpoint file: move it aside"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_sizes_are_printed_in_a_unit_that_shows_them():
    assert [byte_size(count) for count in (512, 12 * 2**20, 1.5 * 2**30)] == ["512 B", "12.0 MiB", "1.50 GiB"]


def test_the_cache_warning_shows_sizes_below_a_gib(tmp_path, monkeypatch, capsys):
    files = []
    for index in range(3):
        files.append(tmp_path / f"{index}.png")
        Image.new("RGB", (8, 8)).save(files[-1])
    monkeypatch.setattr(images.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 100})())
    decoded = images.decoded_split(files, size=64, cache=tmp_path / "cache")
    assert decoded.shape == (3, 3, 64, 64)
    warning = capsys.readouterr().err
    assert "needs 36.0 KiB, 100 B free" in warning and "0.00 GiB" not in warning, warning


def test_an_offline_cifar10_download_is_one_line_naming_the_local_copy(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(images.torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DatasetError) as caught:
        images.load_image_split("cifar10", tmp_path, "train", 32, None, download=True)
    message = str(caught.value)
    assert "downloading CIFAR-10" in message and "failed" in message and "offline" in message, message
    assert "--data.root" in message and "urlopen" not in message


def test_the_export_hint_is_a_command_a_shell_reads_back(
    tmp_path, tiny_model_config, load_program, capsys, monkeypatch
):
    config = RunConfig(model=tiny_model_config()).validate()
    state = {"model": HyperSiren(config.model).state_dict(), "step": 1, "config": config.to_dict()}
    save_checkpoint(state, tmp_path / "run" / "checkpoint.pt")
    out = str(tmp_path / "my runs" / "it's shared")
    args = ("--device", "cpu", "--run", str(tmp_path / "run"), "--out", out)
    code, printed, err = run_main(load_program, capsys, monkeypatch, "train/export.py", *args)
    assert code == 0, err
    command = printed.strip().split("evaluate it: ", 1)[1]
    assert shlex.split(command) == ["python", "eval/evaluate.py", "--run", out]


def test_grad_clip_accepts_what_its_help_promises_and_a_saved_config_can_hold():
    assert "inf" not in FIELD_HELP["train.grad_clip"]
    with pytest.raises(ConfigError, match=r"train.grad_clip=inf must be > 0 and finite"):
        RunConfig().update({"train.grad_clip": math.inf}).validate()
    RunConfig().update({"train.grad_clip": 1e9}).validate()


@pytest.mark.parametrize("value", ["-inf", "-1e-3", "-2", "-.5"])
def test_a_negative_number_is_a_value_that_validation_refuses(value):
    parser = program("test")
    add_config_options(parser, default_preset=REPO / "train" / "default.toml", argv=[])
    overrides = config_overrides(parser.parse_args(["--train.lr", value]))
    assert overrides == {"train.lr": float(value)}
    with pytest.raises(ConfigError, match=rf"train.lr={float(value)!r} must be a finite number > 0"):
        RunConfig().update(overrides).validate()


def test_a_constant_training_split_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(series, "ucr_split", lambda name, split: torch.full((4, 1, 16), 2.5))
    with pytest.raises(DatasetError, match=r"'Flat' train: every sample of every series is 2.5.*cannot be scaled"):
        series.load_series("Flat", "test", length=16)


def test_inpaint_supersampling_is_bounded_as_the_programs_are():
    from hypersiren.across.config import ModelConfig
    from hypersiren.across.rules import MAX_SUPERSAMPLE

    model = HyperSiren(ModelConfig(latent_dim=8, encoder_widths=[8, 8], local_features=8)).eval()
    image, mask = torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4, dtype=torch.bool)
    assert model.inpaint(image, mask, supersample=MAX_SUPERSAMPLE).shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match=rf"supersample must be an integer in \[1, {MAX_SUPERSAMPLE}\]"):
        model.inpaint(image, mask, supersample=100)


def test_evaluate_refuses_a_scale_beyond_the_originals_and_a_file_as_out_before_the_work(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_program", REPO / "eval" / "evaluate.py")
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    config = RunConfig()  # CelebA at 32x32: the 178 px crops hold at most x5.56
    assert program.chosen_scales([5.5], config) == [5.5]
    with pytest.raises(ConfigError, match="--scales 8 renders 256 px, beyond the 178 of the originals"):
        program.chosen_scales([2.0, 8.0], config)
    source = Path(spec.origin).read_text()
    assert source.index("is a file, not a folder") < source.index("fit_data_priors(")  # refused before the work


def saved_run(run: Path, model_config, **data: object) -> Path:
    """A run folder whose saved config has the ``data`` fields given."""
    config = RunConfig(model=model_config).validate()
    for name, value in data.items():
        setattr(config.data, name, value)
    state = {"model": HyperSiren(config.model).state_dict(), "step": 1, "config": config.to_dict()}
    save_checkpoint(state, run / "checkpoint.pt")
    return run


def test_a_run_folder_chooses_neither_a_cache_to_write_nor_a_download(
    tmp_path, tiny_model_config, load_program, capsys, monkeypatch
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(10):
        Image.new("RGB", (12, 12), (25 * index, 0, 0)).save(photos / f"{index}.png")
    theirs = tmp_path / "their cache"
    run = saved_run(tmp_path / "shared", tiny_model_config(), dataset="folder", root=str(photos), cache=str(theirs))
    args = ("--run", str(run), "--num-images", "1", "--device", "cpu")
    code, printed, err = run_main(load_program, capsys, monkeypatch, "eval/inpaint.py", *args)
    assert code == 0 and "wrote" in printed, err
    assert not theirs.exists()  # decoded into memory: the saved cache is not followed

    def download(*args, **kwargs):
        raise AssertionError("went online because a run folder said so")

    monkeypatch.setattr(images.torchvision.datasets, "CIFAR10", download)
    cifar = tmp_path / "cifar"
    run = saved_run(tmp_path / "online", tiny_model_config(), dataset="cifar10", root=str(cifar), download=True)
    code, _, err = run_main(load_program, capsys, monkeypatch, "eval/inpaint.py", "--run", str(run), "--device", "cpu")
    one_line_error(code, err, "CIFAR-10 not found under")
    assert not cifar.exists()
    config, _ = load_run(run, data_cache="mine")  # a cache named on the command line is used, from the working folder
    assert config.data.cache == str(Path("mine").absolute()) and not config.data.download


@pytest.mark.parametrize(
    ("place", "phrase"),
    [
        ("a file/bench.json", "lies under"),
        ("a folder", "is a folder, not a file"),
        pytest.param(
            "read-only/bench.json",
            "you cannot write in",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only folder"),
        ),
    ],
)
def test_bench_refuses_an_out_it_cannot_write_before_the_timing(
    tmp_path, load_program, capsys, monkeypatch, place, phrase
):
    (tmp_path / "a file").write_text("mine")
    (tmp_path / "a folder").mkdir()
    (tmp_path / "read-only").mkdir(mode=0o500)
    bench = load_program("eval/bench.py")

    def timing(*args, **kwargs):
        raise AssertionError("the timing began before --out was checked")

    monkeypatch.setattr(bench, "gemm_flops_per_second", timing)
    out = tmp_path / place
    monkeypatch.setattr(sys, "argv", ["eval/bench.py", "--device", "cpu", "--replace", "--out", str(out)])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    one_line_error(stopped.value.code, capsys.readouterr().err, f"--out {out}", phrase, "pass --out")

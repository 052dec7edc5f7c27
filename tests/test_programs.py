"""Every program turns an ordinary mistake into one line on stderr that names the fix: exit code 2, no traceback."""

import ast
import errno
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hypersiren import start
from hypersiren.across.checkpoint import save_checkpoint
from hypersiren.across.config import RunConfig
from hypersiren.across.model import HyperSiren
from hypersiren.cli import exits_cleanly
from hypersiren.errors import CheckpointError
from hypersiren.single.coordinate_mlps import ACTIVATIONS

REPO = Path(__file__).resolve().parents[1]


def run(program: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / program), *args]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture
def corrupt_run(tmp_path: Path) -> Path:
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a whole checkpoint")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments, phrases",
    [
        (["--train.lrr=1"], ["unrecognized arguments: --train.lrr=1", "train.py --help"]),
        (["--train.lr"], ["argument --train.lr: expected one argument"]),
        (["--train.max_steps=0"], ["train.max_steps=0 must be in [1, 1000000000000]"]),
        (["--data.root", "{empty}"], ["CelebA not found under", "pass --data.root"]),
        (["--config", str(REPO / "train" / "osuleaf.toml"), "--data.root", "NoSuchSet"], ["UCR"]),
    ],
)
def test_train_mistakes(tmp_path, arguments, phrases):
    (tmp_path / "empty").mkdir()
    arguments = [argument.format(empty=tmp_path / "empty") for argument in arguments]
    result = run("train/train.py", "--out", str(tmp_path / "run"), "--device", "cpu", *arguments)
    assert_one_line_error(result, *phrases)
    assert not (tmp_path / "run").exists()  # even a mistake found once the folder was claimed: no train.lock left


@pytest.mark.slow
@pytest.mark.parametrize("program", ["eval/evaluate.py", "eval/inpaint.py", "eval/precision.py"])
def test_evaluation_programs_on_a_corrupt_checkpoint(corrupt_run, program):
    result = run(program, "--run", str(corrupt_run), "--device", "cpu")
    assert_one_line_error(result, "is corrupt or not a hypersiren checkpoint", "point to an intact one")


@pytest.mark.slow
def test_evaluation_of_a_folder_without_a_run(tmp_path):
    assert_one_line_error(run("eval/evaluate.py", "--run", str(tmp_path)), "no checkpoint at", "train first")


@pytest.mark.slow
@pytest.mark.parametrize("program", ["train/fit_image.py", "train/fit_derivatives.py", "train/fit_sdf.py"])
def test_fit_programs_on_an_output_folder_that_cannot_be_created(tmp_path, program):
    (tmp_path / "file").write_text("a file, not a folder")
    result = run(program, "--out", str(tmp_path / "file" / "results"), "--device", "cpu")
    assert_one_line_error(result, "Not a directory", "check the path")


@pytest.mark.parametrize("program", ["eval/bench.py", "train/fit_image.py", "train/train.py"])
def test_a_mistyped_option_is_one_line_naming_it(program):
    assert_one_line_error(run(program, "--rounds", "nine", "--steps", "ten"), "--help")


@pytest.mark.slow
@pytest.mark.parametrize(
    "program, arguments, phrase",
    [
        ("train/fit_image.py", ["--size", "0"], "argument --size: must be in [8, 2048], got 0"),
        (
            "train/fit_derivatives.py",
            ["--size", "1"],
            "argument --size: must be in [8, 2048], got 1",
        ),  # 100 dB for nothing
        ("train/fit_image.py", ["--photo", "cameraman"], "argument --photo: invalid choice: 'cameraman'"),
        ("train/fit_image.py", ["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        ("train/fit_derivatives.py", ["--blend-weight", "2"], "argument --blend-weight: must be in [0, 1], got 2"),
        ("train/fit_derivatives.py", ["--lr=-1e-4"], "argument --lr: must be a finite number > 0"),
        ("train/fit_sdf.py", ["--resolution", "1"], "argument --resolution: must be in [2, 512], got 1"),
        ("train/fit_sdf.py", ["--batch-size", "0"], "argument --batch-size: must be in [1, 10000000], got 0"),
        ("train/fit_sdf.py", ["--seed", "-1"], "argument --seed: must be in [0, 4294967295], got -1"),
        ("train/fit_sdf.py", ["--omega", "1e308"], "argument --omega: must be in (0, 10000], got 1e308"),  # was NaN
    ],
)
def test_fit_options_are_refused_before_anything_is_written(tmp_path, program, arguments, phrase):
    result = run(program, "--out", str(tmp_path / "out"), "--device", "cpu", *arguments)
    assert_one_line_error(result, phrase)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "program, arguments, phrase",
    [
        ("eval/bench.py", ["--rounds", "0"], "argument --rounds: must be >= 1, got 0"),
        ("eval/precision.py", ["--run", "RUN", "--limit", "0"], "argument --limit: must be >= 1, got 0"),
        ("eval/inpaint.py", ["--run", "RUN", "--seed", "4294967296"], "argument --seed: must be in [0, 4294967295]"),
    ],
)
def test_eval_options_are_checked_where_they_are_parsed(program, arguments, phrase):
    assert_one_line_error(run(program, "--device", "cpu", *arguments), phrase)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_named_and_an_intact_checkpoint_is_not_called_corrupt(tmp_path, tiny_model_config):
    config = RunConfig(model=tiny_model_config())
    model = HyperSiren(config.model)
    save_checkpoint({"model": model.state_dict(), "step": 1, "config": config.to_dict()}, tmp_path / "checkpoint.pt")
    result = run("eval/evaluate.py", "--run", str(tmp_path), "--device", "cuda")
    assert_one_line_error(result, "argument --device: device 'cuda' is not available here: this machine has cpu")
    assert "corrupt" not in result.stderr
    training = run("train/train.py", "--out", str(tmp_path / "run"), "--device", "cuda:1")
    assert_one_line_error(training, "device 'cuda:1' is not available here")
    assert not (tmp_path / "run").exists()  # refused before any run folder is created


@pytest.mark.slow
def test_dataset_check_with_an_impossible_size(tmp_path):
    result = run("datasets/check.py", "--data.root", str(tmp_path), "--data.image_size", "0")
    assert_one_line_error(result, "data.image_size=0 must be in [2, 1024]")


@pytest.mark.parametrize(
    "error, line",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device (free space on that disk"),
        (PermissionError(errno.EACCES, "Permission denied", "/runs/a"), "Permission denied: /runs/a (check its perm"),
        (CheckpointError("checkpoint x is corrupt\n(details)"), "checkpoint x is corrupt (details)"),
        (FileExistsError(errno.EEXIST, "File exists", "out"), "File exists: out (a file is in the way where a folder"),
    ],
)
def test_expected_errors_become_one_line(capsys, error, line):
    with pytest.raises(SystemExit) as exit_info, exits_cleanly():
        raise error
    assert exit_info.value.code == 2
    printed = capsys.readouterr().err
    assert printed.startswith(f"error: {line}") and printed.count("\n") == 1, printed


def test_bugs_keep_their_traceback():
    with pytest.raises(ZeroDivisionError), exits_cleanly():
        print(1 / 0)


def assert_last_line_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """Exit 2 and, whatever progress bars came before, ``error: ...`` as the last line."""
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert last.startswith("error: ") and all(phrase in last for phrase in phrases), result.stderr[-3000:]


TINY_FIT = ["--size", "8", "--hidden", "8", "--layers", "1", "--steps", "5", "--device", "cpu"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "program, arguments",
    [
        ("train/fit_image.py", [*TINY_FIT, "--activations", "siren"]),
        ("train/fit_derivatives.py", TINY_FIT),
        ("train/fit_sdf.py", ["--hidden", "8", "--layers", "1", "--steps", "5", "--batch-size", "64"]),
    ],
)
def test_a_diverging_fit_stops_with_exit_2_and_reports_no_result(tmp_path, program, arguments):
    result = run(program, "--out", str(tmp_path / "out"), "--lr", "1e30", *arguments)
    assert_last_line_error(result, "diverged", "rerun at a lower learning rate (e.g. --lr 1e+29)")
    assert "nan" not in result.stdout.lower() and "inf" not in result.stdout.lower()
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "program, arguments",
    [
        ("train/fit_image.py", ["--size", "2048", "--hidden", "4096", "--layers", "8"]),
        ("train/fit_derivatives.py", ["--size", "2048"]),
        ("train/fit_sdf.py", ["--eval-points", "10000000"]),  # Chamfer distances in blocks of 2048 x 10 M
        ("train/fit_sdf.py", ["--batch-size", "10000000", "--hidden", "4096"]),
    ],
)
def test_a_fit_too_large_for_memory_is_refused_before_anything_is_written(tmp_path, program, arguments):
    result = run(program, "--out", str(tmp_path / "out"), "--device", "cpu", *arguments)
    assert_one_line_error(result, "needs about", "GiB", "lower --size")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_fit_never_writes_into_a_training_run_or_another_programs_output(tmp_path):
    save_checkpoint({"model": {}, "step": 1, "config": {}}, tmp_path / "run" / "checkpoint.pt")
    (tmp_path / "sdf").mkdir()
    (tmp_path / "sdf" / "config.json").write_text('{"program": "fit_sdf"}')
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("someone's")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for out, phrase in [("run", "holds a training run"), ("sdf", "holds the output of fit_sdf"), ("mine", "no fit's")]:
        assert_one_line_error(run("train/fit_image.py", "--out", str(tmp_path / out), *TINY_FIT), phrase)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


@pytest.mark.slow
def test_dataset_check_fails_when_a_split_it_checks_is_unusable(tmp_path, celeba_root):
    empty = run("datasets/check.py", "--data.root", str(tmp_path))
    assert_last_line_error(empty, "3 of 3 splits unusable (train, val, test): fix the root")
    named = run("datasets/check.py", "--data.root", str(celeba_root), "--splits", "val", "test")  # must be usable
    assert_last_line_error(named, "1 of 2 splits unusable (test)", "--splits val")


def test_dataset_check_names_an_absent_split_without_failing(celeba_root):
    partial = run("datasets/check.py", "--data.root", str(celeba_root))  # the README's: the shared copy has no test
    assert partial.returncode == 0, partial.stderr[-3000:]
    lines = partial.stdout.strip().splitlines()
    assert lines[0].startswith("train: 4560 images (3, 32, 32)") and lines[1].startswith("  val: 780 images")
    assert lines[2].startswith(" test: unavailable:")
    assert lines[-1] == "absent or unusable here: test (above); train on train, hold out val (data.eval_split)"


@pytest.mark.slow
def test_dataset_check_reads_ucr_series(ucr_root):
    result = run("datasets/check.py", "--data.dataset", "ucr", "--data.root", ucr_root, "--data.image_size", "128")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("train: 200 series (1, 128)") and lines[1].startswith(" test: 242 series (1, 128)")


def test_dataset_check_explains_every_option():
    result = run("datasets/check.py", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    options = " ".join(result.stdout.partition("options:")[2].split())  # unwrapped
    for option, phrase in [
        ("--data.dataset {celeba,cifar10,folder,ucr}", "the layout of data.root"),
        ("--data.root DATA_ROOT", "the dataset's folder"),
        ("--data.image_size IMAGE_SIZE", "side in pixels"),
        ("--data.download", "CIFAR-10 only"),
        ("--splits SPLITS [SPLITS ...]", "the splits that must be usable"),
    ]:
        assert re.search(rf"{re.escape(option)} {re.escape(phrase)}", options), (option, options)


PROGRAMS = sorted(
    str(path.relative_to(REPO)) for folder in ("train", "eval", "datasets") for path in (REPO / folder).glob("*.py")
)


def test_ctrl_c_while_a_program_imports_torch_is_one_line_and_exit_130():
    interrupted_at_import = "import hypersiren.start, os, signal; os.kill(os.getpid(), signal.SIGINT); import torch"
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", interrupted_at_import], capture_output=True, text=True, env=environment
    )
    assert (result.returncode, result.stderr) == (130, "interrupted\n")
    assert {"train/train.py", "eval/evaluate.py", "datasets/check.py"} <= set(PROGRAMS)  # the glob finds them
    for program in PROGRAMS:  # each imports it before anything that takes time
        first = next(
            node
            for node in ast.parse((REPO / program).read_text()).body
            if isinstance(node, ast.Import | ast.ImportFrom)
        )
        assert isinstance(first, ast.Import) and first.names[0].name == "hypersiren.start", program


def test_once_main_runs_ctrl_c_is_a_keyboard_interrupt_again(capsys):

    signal.signal(signal.SIGINT, start.exit_interrupted)  # as a program's first import does, even if imported before

    with pytest.raises(SystemExit) as exit_info, exits_cleanly():
        signal.raise_signal(signal.SIGINT)
    assert exit_info.value.code == 130 and capsys.readouterr().err == "interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("tool", ["datasets/check.py", "datasets/pack.py"])
def test_dataset_tools_take_no_device_option(tool):
    """They read and write files only: a --device option would promise computing that does not happen."""
    result = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "--device" not in result.stdout


# Runs a program as ``python PROGRAM OPTION...`` would, then names, as stderr's last line, the packages it imported
# that take seconds to load.
RUN_NAMING_HEAVY_IMPORTS = """
import os, runpy, sys
program, *options = sys.argv[1:]
sys.argv, sys.path[0] = [program, *options], os.path.dirname(program)
try:
    runpy.run_path(program, run_name="__main__")
finally:
    heavy = {"torch", "torchvision", "numpy", "scipy", "skimage", "matplotlib", "PIL", "gradio"}
    print("imported:", *sorted(heavy & {name.partition(".")[0] for name in sys.modules}), file=sys.stderr)
"""


def run_naming_heavy_imports(program: str, *options: str) -> tuple[subprocess.CompletedProcess, str]:
    """``program`` run on ``options``, and the heavy packages it imported (``RUN_NAMING_HEAVY_IMPORTS``)."""
    command = [sys.executable, "-c", RUN_NAMING_HEAVY_IMPORTS, str(REPO / program), *options]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, check=False)
    *message, imported = result.stderr.splitlines()
    result.stderr = "\n".join(message)
    return result, imported


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_and_a_mistyped_option_answer_before_torch_loads(program):
    """Each program parses its options before it imports torch (5-6 s on a quiet 2-core machine), so that --help and
    a mistyped option answer in a fraction of a second."""
    helped, imported = run_naming_heavy_imports(program, "--help")
    assert helped.returncode == 0 and "options:" in helped.stdout, helped.stderr[-3000:]
    assert imported == "imported:", program
    refused, imported = run_naming_heavy_imports(program, "--bogus")
    assert_one_line_error(refused, "--help")
    assert imported == "imported:", program


def test_a_preset_that_cannot_be_read_is_one_line_before_torch_loads(tmp_path):
    refused, imported = run_naming_heavy_imports("train/train.py", "--config", str(tmp_path / "none.toml"))
    assert_one_line_error(refused, f"no config at {tmp_path / 'none.toml'}")
    assert imported == "imported:"


def test_fit_programs_offer_what_the_library_builds(load_program):
    """Their choices are named before torch loads, apart from the library's own names: the same, in the same order."""
    fit_sdf = load_program("train/fit_sdf.py")
    assert tuple(fit_sdf.SHAPES) == fit_sdf.SHAPE_NAMES
    assert tuple(load_program("train/fit_image.py").LABELS) == ACTIVATIONS

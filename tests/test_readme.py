"""The README's Python blocks and training commands run as written, and the results it links are the runs' own."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hypersiren.cli import config_overrides

REPO = Path(__file__).resolve().parents[1]
TRAININGS = re.findall(r"python train/train\.py ([^&\n]*)", (REPO / "README.md").read_text())
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_python_block_runs_from_any_folder_and_writes_its_result(index, celeba_root, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        cwd=tmp_path,  # not the repository: a user's own folder
        capture_output=True,
        text=True,
        timeout=300,
        # PYTHONPATH: this checkout's package, which the install points to except in a second worktree of it
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert result.returncode == 0, f"README block {index}:\n{BLOCKS[index]}\n{result.stderr[-3000:]}"
    assert list(tmp_path.glob("*.png")) and "dB" in result.stdout  # a result shown and saved, not only computed


def test_the_readme_has_training_commands():
    assert len(TRAININGS) >= 2  # the default preset and the series one


@pytest.mark.parametrize("arguments", TRAININGS)
def test_each_training_command_is_a_valid_config(arguments, load_program, monkeypatch):
    """What train.py checks before it decodes or writes anything: a README line that fails there fails here."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["train/train.py", *shlex.split(arguments)])
    args, preset = load_program("train/train.py").parse_args()
    preset.update(config_overrides(args)).validate()


def test_the_results_behind_the_readmes_link_are_the_pretrained_runs_numbers():
    assert "[docs/results.md](docs/results.md)" in (REPO / "README.md").read_text()
    results = json.loads((REPO / "pretrained" / "celeba32" / "eval" / "metrics.json").read_text())["results"]
    lines = (REPO / "docs" / "results.md").read_text().splitlines()
    for method, label in [("hypersiren", "HyperSiren (raw rendering)"), ("hypersiren_pasted", "HyperSiren, observed")]:
        row = next(line for line in lines if line.startswith(f"| {label}"))  # the first table: CelebA 32x32
        shown = [cell.strip(" *") for cell in row.split("|")[2:6]]
        assert shown == [f"{results[setting][method]['psnr']:.2f}" for setting in ("10", "100", "1000", "top_half")]


@pytest.mark.parametrize(
    ("run", "heading", "settings", "rows"),
    [
        (
            "osuleaf",
            "| PSNR (dB), all samples, observed pasted",
            ("1", "13", "125", "first_half"),
            [
                ("HyperSiren", "hypersiren_pasted"),
                ("Ablation: same U-Net, cell head", "pixel_unet_pasted"),
                ("Gaussian conditional mean (PCA of the training series)", "gaussian"),
                ("Mean of the nearest training series", "neighbours"),
                ("Nearest sample", "nearest"),
                ("Linear (np.interp; end values held outside the observed span)", "linear"),
                ("Periodic linear (np.interp over the period: outlines are closed)", "periodic"),
                ("Cubic spline (scipy `CubicSpline`, natural)", "cubic"),
            ],
        ),
        (
            "celeba32",
            "| PSNR (dB), 780 held-out faces, observed pasted",
            ("10", "100", "1000", "top_half"),
            [
                ("HyperSiren (`pretrained/celeba32`, the default preset)", "hypersiren_pasted"),
                ("Ablation: same U-Net, pixel head", "pixel_unet_pasted"),
                ("Gaussian conditional mean (PCA of the training faces)", "gaussian"),
                ("Mean of the nearest training faces", "neighbours"),
                ("Biharmonic (scikit-image `inpaint_biharmonic`)", "biharmonic"),
            ],
        ),
        (
            "celeba32_prior",
            "| PSNR (dB), 780 held-out faces, observed pasted",
            ("10", "100", "1000", "top_half"),
            [("HyperSiren with the Gaussian prior inside (`pretrained/celeba32_prior`)", "hypersiren_pasted")],
        ),
    ],
)
def test_the_readmes_tables_are_the_pretrained_runs_numbers(run, heading, settings, rows):
    """The README's tables (observed points pasted) are the pretrained runs' recorded evaluations, data-driven
    baselines included."""
    results = json.loads((REPO / "pretrained" / run / "eval" / "metrics.json").read_text())["results"]
    text = (REPO / "README.md").read_text()
    table = text[text.index(heading) :].split("\n\n")[0].splitlines()
    shown = {line.split("|")[1].strip(): [cell.strip(" *") for cell in line.split("|")[2:6]] for line in table[2:]}
    for label, method in rows:
        assert shown[label] == [f"{results[setting][method]['psnr']:.2f}" for setting in settings], label


def test_the_readmes_own_size_table_is_the_pretrained_runs_numbers():
    results = json.loads((REPO / "pretrained" / "celeba64" / "eval" / "own_size.json").read_text())["results"]
    text = (REPO / "README.md").read_text()
    table = text[text.index("| PSNR (dB), 48 held-out faces, same pixels") :].split("\n\n")[0].splitlines()
    shown = {line.split("|")[1].strip(): [cell.strip(" *") for cell in line.split("|")[2:8]] for line in table[2:]}
    rows = {
        "HyperSiren (`pretrained/celeba64`)": "hypersiren",
        "Biharmonic at that size": "biharmonic",
        "Gaussian prior (64², fitted to the training faces)": "gaussian",
    }
    columns = [(side, density) for side in ("64", "128", "256") for density in ("1%", "10%")]
    for label, row in rows.items():
        assert shown[label] == [f"{results[side][density][row]['psnr']:.2f}" for side, density in columns], label

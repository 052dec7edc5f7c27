import importlib.util
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image

from hypersiren.across.config import ModelConfig, RunConfig, option_type

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HYPERSIREN_SHARED_DATA", REPO.parent / "shared" / "data"))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shared_dataset(name: str) -> Path:
    """A real dataset from ../shared/data (or $HYPERSIREN_SHARED_DATA); skips, saying why, if it is absent."""
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"real data missing: {root} not found (set HYPERSIREN_SHARED_DATA to the folder holding {name}/)")
    return root


@pytest.fixture(autouse=True)
def seeded_global_rng() -> None:
    """Every test draws from torch's global RNG as if it ran alone: a result cannot hang on which tests ran before."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def celeba_root() -> Path:
    return shared_dataset("celeba")


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    return shared_dataset("cifar10")


@pytest.fixture(scope="session")
def ucr_root() -> str:
    """The UCR dataset the series tests use: shipped inside aeon (the ``series`` extra), so never downloaded."""
    pytest.importorskip("aeon", reason="the series tests read OSULeaf from aeon: pip install -e '.[series]'")
    return "OSULeaf"


@pytest.fixture(scope="session")
def load_program() -> Callable[[str], ModuleType]:
    """Imports a program under train/ or eval/ (not a package) as a module, to test its functions."""

    def load(relative_path: str) -> ModuleType:
        path = REPO / relative_path
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a program installs hypersiren.start's: not pytest's
        return module

    return load


BATCH_HEIGHT, BATCH_WIDTH = 8, 6  # a small non-square image: a transposed axis shows


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two random images ``(2, 3, 8, 6)`` in [-1, 1] and masks ``(2, 1, 8, 6)`` observing about half the pixels."""
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, BATCH_HEIGHT, BATCH_WIDTH, generator=generator) * 2 - 1
    mask = torch.rand(2, 1, BATCH_HEIGHT, BATCH_WIDTH, generator=generator) < 0.5
    return image, mask


@pytest.fixture(scope="session")
def tiny_model_config() -> Callable[..., ModelConfig]:
    """``tiny_model_config(**fields)``: a ``ModelConfig`` that builds and runs in milliseconds, ``fields`` changed."""
    tiny = dict(latent_dim=8, encoder_widths=[4, 8], local_features=8, siren_hidden_features=8, hyper_hidden_features=8)
    return lambda **fields: ModelConfig(**(tiny | fields))


@pytest.fixture(scope="session")
def configured() -> Callable[..., RunConfig]:
    """``configured(config, "section.field=value", ...)``: ``config`` with each value set as its ``--section.field``
    option reads it."""

    def apply(config: RunConfig, *assignments: str) -> RunConfig:
        values = dict(assignment.split("=", 1) for assignment in assignments)
        return config.update({key: option_type(key, config.field_type(key))(text) for key, text in values.items()})

    return apply


def fake_celeba(root: Path, count: int = 12) -> Path:
    """``count`` 40x50 JPEG 'faces' in CelebA's layout, the last two in val."""
    (root / "img_align_celeba").mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    lines = []
    for index in range(count):
        pixels = torch.randint(0, 256, (50, 40, 3), dtype=torch.uint8, generator=generator).numpy()
        Image.fromarray(pixels).save(root / "img_align_celeba" / f"{index:06d}.jpg", quality=95)
        lines.append(f"{index:06d}.jpg {int(index >= count - 2)}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root

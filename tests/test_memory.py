"""Memory estimates: what fits a machine of 8 GiB is accepted, what cannot is refused before a step runs."""

from pathlib import Path

import pytest
import torch

from hypersiren.across import memory
from hypersiren.across.config import RunConfig, parameter_count
from hypersiren.across.memory import inpaint_bytes, require_memory, training_bytes
from hypersiren.across.model import HyperSiren
from hypersiren.errors import MemoryLimitError

PRESETS = Path(__file__).resolve().parents[1] / "train"
GIB = 2**30


@pytest.fixture
def machine_of_8_gib(monkeypatch):
    monkeypatch.setattr(memory, "physical_memory", lambda: 8 * GIB)


def step_bytes(**changes: int) -> float:
    """The default preset's step, with ``section__field=value`` changes."""
    config = RunConfig.load(PRESETS / "default.toml").update({k.replace("__", "."): v for k, v in changes.items()})
    size = config.data.image_size
    points = size * size + config.train.fine_points
    return training_bytes(config.model, config.train.batch_size, size * size, points, parameter_count(config.model))


def test_the_default_preset_fits_and_an_absurd_image_size_is_refused_in_one_line(machine_of_8_gib):
    require_memory(step_bytes(), "cpu", what="the default step", fix="lower it")  # ~0.7 GiB: accepted
    with pytest.raises(MemoryLimitError) as error:
        require_memory(
            step_bytes(data__image_size=1024, train__batch_size=8), "cpu", what="a step", fix="lower train.batch_size"
        )
    message = str(error.value)
    assert "\n" not in message and "a step needs about" in message and "8.0 GiB" in message
    assert message.endswith("lower train.batch_size")


def test_the_estimate_grows_with_what_a_step_holds():
    base = step_bytes()
    assert step_bytes(train__batch_size=64) > 1.9 * base
    assert step_bytes(data__image_size=64, train__max_context=100) > 2.5 * base  # 4x the pixels
    assert step_bytes(train__fine_points=4096) > step_bytes(train__fine_points=0)
    assert step_bytes(model__siren_hidden_features=256) > step_bytes()


def test_inpaint_refuses_a_render_that_cannot_fit_before_computing_anything(machine_of_8_gib, tiny_model_config):
    config = tiny_model_config()
    model = HyperSiren(config).eval()
    image, mask = torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(MemoryLimitError, match=r"inpainting 1 signals of 8x8 at 50000x50000 needs about .* GiB"):
        model.inpaint(image, mask, size=(50_000, 50_000))
    assert inpaint_bytes(config, 1, (8, 8), (64, 64), chunk_size=65536) < 0.01 * GIB
    assert model.inpaint(image, mask, size=(64, 64)).shape == (1, 3, 64, 64)

"""How images meet the model: uint8 pixels <-> values in [-1, 1] (coordinates: ``coordinates.cell_centres``)."""

from torch import Tensor

from hypersiren.core.checks import require_tensor


def to_model_space(images: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` -> float ``[-1, 1]``, the range the SIREN is trained on."""
    return require_tensor(images, "images").float() / 127.5 - 1.0


def to_unit_range(values: Tensor) -> Tensor:
    """Model space ``[-1, 1]`` -> ``[0, 1]`` (clamped), the range metrics and figures use."""
    return ((values + 1.0) / 2.0).clamp(0.0, 1.0)

"""What a public function checks of its arguments before it computes: that a tensor is a tensor and a count an integer.

A NumPy array passed where a tensor belongs fails deep inside with ``'numpy.ndarray' object has no attribute
'dim'``, and a count of 10.7 pixels is silently rounded or truncated somewhere; each is refused here, in one
line that says what was given and what to pass.
"""

import math
import numbers
from typing import Any

from torch import Tensor


def require_tensor(value: Any, name: str) -> Tensor:
    """``value`` if it is a tensor; ``TypeError`` naming ``name`` and the conversion otherwise."""
    if not isinstance(value, Tensor):
        convert = "torch.from_numpy(array)" if type(value).__module__ == "numpy" else "torch.as_tensor(value)"
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}: convert it with {convert}")
    return value


def require_count(value: Any, name: str, low: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (a NumPy integer included, a bool or 10.0 not), >= ``low`` if given;
    the caller checks any other range, with its own reason."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}): round it yourself")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def require_positive(value: Any, name: str) -> float:
    """``value`` as a ``float`` if it is a finite number > 0 (a learning rate); ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)

"""Every error hypersiren raises on purpose, in one leaf module: programs catch these and print one line.

Each message names the problem and the fix. The ``ValueError`` ones are a bad value (a config, an
argument, a result); the ``RuntimeError`` ones a bad file or folder; a diverged fit is arithmetic.
"""


class ConfigError(ValueError):
    """A preset, override or saved config that cannot work; the message names the key and the fix."""


class MemoryLimitError(ValueError):
    """A run or call whose estimated memory exceeds the device's; the message names the estimate and what to lower."""


class NonFiniteResultError(ValueError):
    """A result holds NaN or inf: no number to report, and no strict JSON reader takes it."""


class DatasetError(RuntimeError):
    """A dataset root is missing, incomplete, has the wrong layout, or cannot be held in memory as asked."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, not a hypersiren checkpoint, or would hold non-finite values."""


class FitDivergedError(ArithmeticError):
    """A fit's loss became NaN or inf: its numbers are no result; the message names the step and the fix."""

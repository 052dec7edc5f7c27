"""What every program does with an expected error: one line on stderr that names the fix, exit code 2.

A missing dataset, a corrupt checkpoint, a bad override, a full disk or a read-only
folder is the user's to fix, and a 30-line traceback hides the one line that says how.
Anything else is a bug and keeps its traceback.
"""

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hypersiren.checkpoint import CheckpointError
from hypersiren.config import ConfigError
from hypersiren.data import DatasetError

EXIT_CODE = 2  # as argparse uses for a bad command line

_OS_FIXES = {
    errno.ENOSPC: "free space on that disk, or write elsewhere",
    errno.EDQUOT: "free space within your quota, or write elsewhere",
    errno.EACCES: "check its permissions, or write elsewhere",
    errno.EPERM: "check its permissions, or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path",
    errno.EISDIR: "check the path",
}


@contextmanager
def exits_cleanly() -> Iterator[None]:
    """Turn dataset, checkpoint, config and file-system errors into ``error: <one line>`` and exit 2.

    Use as ``@exits_cleanly()`` on a program's ``main``.
    """
    try:
        yield
    except (DatasetError, CheckpointError, ConfigError, OSError) as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None


def describe(error: BaseException) -> str:
    """One line for an expected error: an OSError as reason, path and fix; others as their own message."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        fix = _OS_FIXES.get(error.errno)
        return f"{error.strerror}{where}" + (f" ({fix})" if fix else "")
    return " ".join(str(error).split())

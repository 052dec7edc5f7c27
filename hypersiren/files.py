"""Every file hypersiren writes (checkpoints, configs, tables, JSON, CSV, figures) is written here, atomically.

A full disk, a kill or Ctrl-C in the middle of a write leaves the previous file, or none, never a
0-byte or half one that a later run would read as the result. The one exception is a log that
grows a line at a time (``append_line``), whose reader skips a torn last line.
"""

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomically(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path`` in one step.

    An OSError anywhere in the write (a full disk included, which ``torch.save`` reports as a
    RuntimeError caused by one) is raised as that OSError naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    # O_EXCL as mkstemp, but mode 0o666 under the umask (mkstemp's 0o600 would hide runs from their readers).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        cause = _os_error(error) if isinstance(error, Exception) else None  # not Ctrl-C
        if cause is None or cause.errno is None:
            raise
        raise OSError(cause.errno, cause.strerror or os.strerror(cause.errno), str(path)) from error


def write_text(text: str, path: str | Path) -> None:
    """Replace ``path`` by ``text`` (UTF-8) all at once."""
    write_atomically(path, lambda file: file.write(text.encode()))


def append_line(line: str, path: str | Path) -> None:
    """Add ``line`` and a newline to the log ``path``. Not atomic: rewriting a growing log at every line would cost
    ever more, so a kill can tear the last line, and the log's reader must skip it (``run_folder.logged_until``)."""
    with Path(path).open("a") as file:
        file.write(line + "\n")


def byte_size(count: float) -> str:
    """``count`` bytes in the largest binary unit that keeps a whole part: ``512 B``, ``12.3 MiB``, ``1.50 GiB``
    (a cache of 12 MiB in GiB would read "0.00 GiB")."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}" if unit == "GiB" else f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left behind; return them.

    Only safe while no other process writes ``path`` (train/train.py holds the run's lock).
    """
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp"))
    for temporary in stale:
        temporary.unlink(missing_ok=True)
    return stale


def _os_error(error: BaseException) -> OSError | None:
    """The OSError that ``error`` is or was raised from (torch wraps a failed write in a RuntimeError)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None

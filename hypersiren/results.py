"""Result files: Markdown tables beside the same numbers as JSON, and curves as CSV; each written atomically."""

import json
import math
import os
from pathlib import Path
from typing import Any

from hypersiren.errors import ConfigError, NonFiniteResultError
from hypersiren.files import write_text


def write_json(value: Any, path: str | Path) -> None:
    """``value`` (numbers, strings, lists, dicts) as indented, strict JSON: a NaN or inf in it is refused
    (``NonFiniteResultError`` naming where), since Python's ``NaN`` literal is no JSON and no result."""
    where = _non_finite(value, "")
    if where is not None:
        raise NonFiniteResultError(f"refusing to write {path}: its entry {where or 'value'} is not a finite number")
    write_text(json.dumps(value, indent=2, allow_nan=False) + "\n", path)


def _non_finite(value: Any, where: str) -> str | None:
    """The path (``['10']['psnr']``) of the first NaN or inf float in ``value``, None if there is none."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    return next((found for key, item in items if (found := _non_finite(item, f"{where}[{key!r}]")) is not None), None)


def earlier_result(
    path: str | Path, key: str, what: str = "a result hypersiren wrote", option: str = "--out"
) -> dict[str, Any] | None:
    """The result a program wrote at ``path`` before (a JSON object holding ``key``), None if there is no file;
    ``ConfigError`` for a file that is not one (someone's own ``metrics.json``: not ``what``), which no program may
    replace, and for a folder, which no write could replace (the program would fail at its end, not now)."""
    if Path(path).is_dir():
        raise ConfigError(f"{path} is a folder, not a file: pass {option} a file name")
    try:
        text = Path(path).read_text()
    except OSError:  # no file, or none readable: nothing to keep, and a write there fails with its own message
        return None
    try:
        saved = json.loads(text)
    except ValueError:  # UnicodeDecodeError included
        saved = None
    if not isinstance(saved, dict) or key not in saved:
        raise ConfigError(f"{path} exists and is not {what}: pass {option} elsewhere, or move it")
    return saved


def require_writable(path: str | Path, option: str = "--out") -> None:
    """``ConfigError`` if no file can be written at ``path``: a folder is there, a file stands where a folder above it
    would be, or the nearest folder above it is not the user's to write in. Checked before a program's minutes of
    work, which a failed write at their end would lose."""
    if Path(path).is_dir():
        raise ConfigError(f"{option} {path} is a folder, not a file: pass {option} a file name")
    above = Path(path).absolute().parent
    while not above.exists():  # the folders that a write makes (write_atomically)
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"{option} {path} lies under {above}, a file, not a folder: pass {option} elsewhere")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: you cannot write in {above}: pass {option} elsewhere")


def written_by(path: str | Path) -> str | None:
    """The ``program`` that the JSON object at ``path`` names: the mark a writer leaves in its folder so that it
    later replaces only its own output. None for no such file, another file, or an object without the mark."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    program = saved.get("program") if isinstance(saved, dict) else None
    return program if isinstance(program, str) else None


def require_own_folder(folder: str | Path, program: str, marker: str, what: str, option: str = "--out") -> None:
    """``ConfigError`` unless ``folder`` is new, empty, or an earlier output of ``program``: one holding ``marker``, a
    JSON object naming it (``written_by``). Anything else is someone's, which a writer must neither replace nor write
    beside; what it recognises is its own mark, never the absence of another's. ``what``: the marker, for messages
    ("fit's config.json")."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{option} {folder} is a file, not a folder: choose a new folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    owner = written_by(folder / marker)
    if owner == program:
        return
    if owner is not None:
        raise ConfigError(f"{option} {folder} holds the output of {owner}: choose another {option}")
    if (folder / marker).exists():
        raise ConfigError(
            f"{option} {folder} holds a {marker} that {program} did not write: choose a new folder, or move it"
        )
    raise ConfigError(f"{option} {folder} is a non-empty folder that holds no {what}: choose a new folder, or move it")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows with the same keys as a Markdown table; floats to 4 significant digits, None as "—".

    The first column is left-aligned (labels), the others right-aligned (numbers)."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    columns = list(rows[0])

    def cell(value: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(cell(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_table(rows: list[dict[str, Any]], out_dir: str | Path, name: str, title: str) -> str:
    """Write ``name.md`` (titled Markdown table) and ``name.json`` (the rows) under ``out_dir``; return the Markdown."""
    markdown = f"## {title}\n\n{markdown_table(rows)}\n"
    write_results(rows, markdown, out_dir, name)
    return markdown


def write_results(summary: Any, markdown: str, out_dir: str | Path, name: str) -> None:
    """Write ``name.json`` (``summary``) and ``name.md`` (``markdown``) under ``out_dir``."""
    out_dir = Path(out_dir)
    write_text(markdown, out_dir / f"{name}.md")
    write_json(summary, out_dir / f"{name}.json")


def write_curves_csv(curves: dict[str, list[float]], path: str | Path) -> None:
    """Curves of equal length as CSV columns, one row per step (first column ``step``)."""
    lengths = {len(values) for values in curves.values()}
    if len(lengths) != 1:
        raise ValueError(f"curves must have equal lengths, got {sorted(lengths)}")
    lines = ["step," + ",".join(curves)]
    for step in range(lengths.pop()):
        lines.append(f"{step}," + ",".join(f"{values[step]:.4f}" for values in curves.values()))
    write_text("\n".join(lines) + "\n", path)

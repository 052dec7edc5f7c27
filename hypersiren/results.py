"""Result files: Markdown tables beside the same numbers as JSON, and curves as CSV; each written atomically."""

import json
import math
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


def earlier_result(path: str | Path, key: str) -> dict[str, Any] | None:
    """The result a program wrote at ``path`` before (a JSON object holding ``key``), None if there is no file;
    ``ConfigError`` for a file that is not one (someone's own ``metrics.json``), which no program may replace."""
    try:
        text = Path(path).read_text()
    except OSError:  # no file, or none readable: nothing to keep, and a write there fails with its own message
        return None
    try:
        saved = json.loads(text)
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or key not in saved:
        raise ConfigError(f"{path} exists and is not a result hypersiren wrote: pass --out elsewhere, or move it")
    return saved


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
